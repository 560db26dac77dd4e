// The built-in udp plugin against the transport compliance suite that third-party transports run too.
import udp from '../../plugins/udp'
import { describeTransportCompliance } from '..'

describeTransportCompliance('udp', { setup: () => ({ plugin: udp, options: { host: '127.0.0.1', port: 0 } }) })
