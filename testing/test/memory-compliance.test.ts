// The in-memory transport against the same compliance suite as udp: one suite, two implementations.
import { describeTransportCompliance, memoryTransport } from '..'

describeTransportCompliance('memory', { setup: () => ({ plugin: memoryTransport() }) })
