// One chat client: a container of core services, the plugins the config names, and the message pipeline between them.
import { randomBytes } from 'node:crypto'
import type { Hook } from 'tapable'
import { asFunction, asValue, createContainer, InjectionMode, type AwilixContainer } from 'awilix'
import { CommandRegistry } from './commands'
import { Fifo } from './fifo'
import { DEFAULT_HOOK_TIMEOUT_MS, NAME_HINT, NAME_PATTERN, type Config } from './config'
import { createHooks, type Hooks } from './hooks'
import { frameKindsOf, loadPlugins, type LoadedPlugin } from './loader'
import { createLogger, DeferredFileSink, fileSink } from './log'
import { PeerDirectory } from './peers'
import { describeThrown, isVeto, MessageRefused, PluginFailure, Veto, type CoreServices } from './plugin'
import { defaultProfileDir, Profile } from './profile'
import { TransportRegistry } from './transports'
import { ServiceRegistry } from './services'
import type {
  Chat,
  ChatMessage,
  Datagram,
  Envelope,
  Identity,
  LocalUser,
  Logger,
  PathKind,
  PeerPacket,
  PeerSummary,
  Pipeline,
  Settings,
} from './types'
import { decodeFrame, encodeFrame, FrameKind, hasFrameHeader, type FrameKinds } from '../protocol/frames'
import { decodeEnvelope, encodeEnvelope, isChatEnvelope, MAX_TEXT_BYTES } from '../protocol/envelope'

/** Longest chat text, in UTF-8 bytes: 64 KiB, which reliable delivery fragments and reassembles. */

export interface ClientStats {
  /** Datagrams no plugin claimed and that were not a DATA frame we could open. */
  dropped: number
  /** Received chat messages an `incoming` tap refused (Veto): not stored or shown. */
  refused: number
  /** Of `dropped`: udsu frames of a kind no plugin registered (`frames` in a plugin's definition). */
  unknownKinds: number
}

export class Client implements Chat, Pipeline {
  readonly hooks: Hooks = createHooks()
  readonly peersDirectory = new PeerDirectory()
  readonly stats: ClientStats = { dropped: 0, refused: 0, unknownKinds: 0 }
  readonly container: AwilixContainer<CoreServices>
  private readonly plugins: LoadedPlugin[]
  /** The core's frame kinds and those the plugins registered: a datagram of any other kind is dropped. */
  private readonly frameKinds: FrameKinds
  private readonly logger: Logger
  /** Set when a terminal frontend needs logs in the profile, which is known only after configure. */
  private readonly profileLog?: DeferredFileSink
  private readonly me: LocalUser = {
    name: '',
    publicKey: '',
    fingerprint: '',
    sign: () => {
      throw new Error('no plugin provided an identity key')
    },
  }
  /** Messages waiting to be handed to `transmit`, per peer; a peer's queue exists while one loop drains it. */
  private readonly outgoing = new Map<string, Fifo<ChatMessage>>()
  /** Message ids are this random prefix (new at every start) and a counter: unique per sender, no entropy per message. */
  private readonly idPrefix = randomBytes(8).toString('hex')
  private idCounter = 0
  private readonly profile = new Profile()
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new'
  settings: Settings
  private markStopped!: () => void
  /** Resolves once the client has stopped, whoever stopped it (a frontend's quit, a signal). */
  readonly stopped = new Promise<void>((resolve) => (this.markStopped = resolve))

  constructor(
    readonly config: Config,
    options: { logger?: Logger } = {},
  ) {
    this.plugins = loadPlugins(config)
    this.frameKinds = frameKindsOf(this.plugins)
    this.settings = { name: config.name ?? '', server: config.server }
    const usesTerminal = this.plugins.some((p) => p.definition.usesTerminal)
    if (usesTerminal && !config.log.file && !options.logger) this.profileLog = new DeferredFileSink()
    this.logger =
      options.logger ?? createLogger(config.log.level, config.log.file ? fileSink(config.log.file) : this.profileLog)
    this.container = createContainer<CoreServices>({ injectionMode: InjectionMode.PROXY, strict: true })
    this.isolateTaps()
  }

  get identity(): Identity {
    return { name: this.me.name, fingerprint: this.me.fingerprint }
  }

  /** configure → init → start → ready. On failure, what started is stopped and the error is rethrown. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('a client starts once')
    this.state = 'starting'
    try {
      this.registerServices()
      // The settings object plugins hold is updated in place, so they all see the final values.
      Object.assign(this.settings, await this.hooks.configure.promise({ ...this.settings }))
      if (!NAME_PATTERN.test(this.settings.name)) {
        throw new Error(
          this.settings.name
            ? `name ${NAME_HINT}, not "${this.settings.name}"`
            : 'no name: pass --name NAME or set name in udsu.config.js',
        )
      }
      this.me.name = this.settings.name
      this.openProfile()
      await this.hooks.init.promise()
      if (!this.me.publicKey) throw new Error(this.missingIdentityHint())
      await this.hooks.start.promise()
      this.state = 'running'
      this.hooks.ready.call(this.identity)
    } catch (error) {
      await this.stop().catch(() => undefined)
      throw error
    }
  }

  /** Why no identity key is set after init; "add rsa" only when no plugin that could set one is configured. */
  private missingIdentityHint(): string {
    const encryption = this.plugins
      .filter((p) => p.definition.provides?.includes('encryption'))
      .map((p) => `"${p.definition.name}"`)
    if (!encryption.length) return 'no plugin provided an identity key: add "rsa" to the plugins in the config'
    return `no identity key was set at init, although ${encryption.join(', ')} provides encryption`
  }

  async stop(): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return
    this.state = 'stopping'
    try {
      await this.hooks.stop.promise()
    } finally {
      this.state = 'stopped'
      this.markStopped()
    }
  }

  get running(): boolean {
    return this.state === 'running'
  }

  // ── the Chat API frontends use ──

  async send(to: string, text: string): Promise<ChatMessage> {
    if (!NAME_PATTERN.test(to)) throw new Error(`"${to}" is not a valid name`)
    if (to === this.me.name) throw new Error('you cannot message yourself')
    if (typeof text !== 'string' || !text.trim()) throw new Error('the message is empty')
    if (Buffer.byteLength(text) > MAX_TEXT_BYTES) throw new Error(`the message is longer than ${MAX_TEXT_BYTES} bytes`)
    if (!this.running) throw new Error('the client is not running')
    const draft: ChatMessage = { id: this.nextId(), from: this.me.name, to, text, ts: Date.now() }
    let message: ChatMessage
    try {
      message = await this.hooks.compose.promise(draft)
    } catch (error) {
      // Any failure in compose refuses the message; the error names it, so a frontend can show which one was not sent.
      throw new MessageRefused(describeThrown(error), draft.id, to)
    }
    this.hooks.accepted.call(message)
    this.hooks.messageState.call({ id: message.id, to, state: 'pending' })
    // One queue per peer keeps messages to a peer in the order they were written.
    const queue = this.outgoing.get(to)
    if (queue) queue.push(message)
    else void this.drainOutgoing(to, message)
    return message
  }

  async peers(): Promise<PeerSummary[]> {
    const known = this.peersDirectory.all().map(({ name, online, path }) => ({ name, online, path }))
    return this.hooks.listPeers.promise(known)
  }

  async connect(peer: string): Promise<PathKind> {
    const path = this.peersDirectory.get(peer)?.path ?? (await this.hooks.connect.promise(peer))
    if (!path) throw new Error(`no path to ${peer}: not online, or unreachable`)
    return path
  }

  fingerprintOf(peer: string): string | undefined {
    return this.hooks.safetyNumber.call(peer)
  }

  /** Seals plaintext for a peer and puts it on a path: encode, frame, send. Throws with the reason. */
  async sendSealed(peer: string, plaintext: Buffer): Promise<void> {
    if (!this.peersDirectory.get(peer)?.path) await this.connect(peer)
    // A failed or refusing tap throws here (see tapFailureHandler): the packet is not sent in any other form.
    const packet = await this.hooks.encode.promise({ peer, bytes: plaintext, sealed: false })
    if (!packet.sealed) throw new Error('no encryption plugin sealed the message, and udsu never sends plaintext')
    if (!Buffer.isBuffer(packet.bytes))
      throw new Error('a plugin left no bytes in the packet (encode must return a packet with a Buffer)')
    const delivered = await this.hooks.send.promise({ ...packet, bytes: encodeFrame(FrameKind.Data, packet.bytes) })
    if (!delivered) throw new Error(`no path to ${peer}`)
  }

  /** 32 lowercase hex: 16 of the prefix, 16 of the counter. */
  private nextId(): string {
    return this.idPrefix + (this.idCounter++).toString(16).padStart(16, '0')
  }

  /** Hands a peer's queued messages to delivery one after another, until the queue is empty. */
  private async drainOutgoing(to: string, first: ChatMessage): Promise<void> {
    const queue = new Fifo<ChatMessage>()
    queue.push(first)
    this.outgoing.set(to, queue)
    try {
      for (let message = queue.shift(); message; message = queue.shift()) await this.deliverOutgoing(message)
    } finally {
      this.outgoing.delete(to)
    }
  }

  private async deliverOutgoing(message: ChatMessage): Promise<void> {
    const envelope: Envelope = { type: 'chat', id: message.id, text: message.text, ts: message.ts }
    try {
      // A delivery plugin takes charge of the message and reports its states; without one it goes out as one datagram.
      if (await this.hooks.transmit.promise(message.to, envelope)) return
      await this.sendSealed(message.to, encodeEnvelope(envelope))
      this.hooks.messageState.call({ id: message.id, to: message.to, state: 'sent' })
    } catch (error) {
      this.hooks.messageState.call({
        id: message.id,
        to: message.to,
        state: 'failed',
        reason: (error as Error).message,
      })
    }
  }

  // ── incoming ──

  /** Every datagram of every transport comes through here. */
  async receive(datagram: Datagram): Promise<void> {
    // Parsed once here, for every plugin's receive tap and for the core.
    const frame = decodeFrame(datagram.bytes, this.frameKinds)
    if (!frame && hasFrameHeader(datagram.bytes)) {
      this.stats.unknownKinds++
      return this.drop(`frame of unregistered kind ${datagram.bytes[2]}`, datagram)
    }
    if (this.hooks.receive.call({ ...datagram, frame })) return
    if (!frame || frame.kind !== FrameKind.Data) return this.drop('unclaimed datagram', datagram)
    const opened = await this.hooks.decrypt.promise({
      bytes: frame.body,
      from: datagram.from,
      transport: datagram.transport,
    })
    if (!opened) return this.drop('DATA frame nobody could open', datagram)
    const decoded = await this.decodePacket(opened)
    if (!decoded) return this.drop(`packet from ${opened.peer} a byte transform dropped`, datagram)
    if (await this.hooks.unwrap.promise(decoded)) return
    await this.receiveEnvelope(decoded.peer, decoded.bytes)
  }

  /**
   * Runs `decode`: the packet with the bytes its taps leave, or undefined when one failed or refused (reported by name in
   * tapFailureHandler), since bytes a transform could not undo are not what the peer sent. Only the bytes may change.
   */
  private async decodePacket(opened: PeerPacket): Promise<PeerPacket | undefined> {
    let result: PeerPacket
    try {
      result = await this.hooks.decode.promise({ ...opened })
    } catch (error) {
      if (!isVeto(error) && !(error instanceof TransformFailed)) throw error
      return undefined
    }
    const bytes = (result as Partial<PeerPacket> | undefined)?.bytes
    if (!Buffer.isBuffer(bytes)) {
      this.hooks.problem.call({
        source: 'decode',
        peer: opened.peer,
        message: `a plugin left no bytes in a packet from ${opened.peer} (decode must return a packet with a Buffer); it was dropped`,
      })
      return undefined
    }
    return { ...opened, bytes }
  }

  /** Parses one envelope from an authenticated peer, lets plugins route it, and delivers chat messages. */
  async receiveEnvelope(peer: string, bytes: Buffer): Promise<void> {
    const envelope = decodeEnvelope(bytes)
    if (!envelope) return this.reject(`malformed envelope from ${peer}`)
    if (await this.hooks.route.promise(envelope, { peer, bytes, sealed: false })) return
    if (envelope.type !== 'chat') return this.reject(`envelope of unknown type "${envelope.type}" from ${peer}`)
    if (!isChatEnvelope(envelope)) return this.reject(`malformed chat message from ${peer}`)
    const { id, text, ts } = envelope
    const received: ChatMessage = { id, from: peer, to: this.me.name, text, ts }
    const filtered = await this.filterIncoming(received)
    if (filtered) await this.hooks.deliver.promise(filtered)
  }

  /**
   * Runs `incoming`: the message as its taps leave it, or undefined when one refused it. Only the text may change: who
   * sent it is what the encryption authenticated, and the id, time and addressee are what receipts and history key on.
   */
  private async filterIncoming(received: ChatMessage): Promise<ChatMessage | undefined> {
    let result: ChatMessage
    try {
      result = await this.hooks.incoming.promise({ ...received })
    } catch (error) {
      // A tap that failed otherwise was reported and passed (isolateTaps); only a refusal comes up to here.
      if (!isVeto(error)) throw error
      this.stats.refused++
      this.logger.debug(`a plugin refused a message from ${received.from}: ${describeThrown(error)}`)
      return undefined
    }
    const text = (result as Partial<ChatMessage> | undefined)?.text
    if (typeof text !== 'string' || Buffer.byteLength(text) > MAX_TEXT_BYTES) {
      const message = `a plugin rewrote a message from ${received.from} into something that is not a text of at most ${MAX_TEXT_BYTES} bytes; it is shown as it came`
      this.logger.error(message)
      this.hooks.problem.call({ source: 'incoming', peer: received.from, message })
      return received
    }
    return { ...received, text }
  }

  private reject(why: string): void {
    this.stats.dropped++
    this.logger.debug(`dropped: ${why}`)
  }

  private drop(why: string, datagram: Datagram): void {
    this.stats.dropped++
    this.logger.debug(`dropped: ${why}`, {
      from: `${datagram.from.address}:${datagram.from.port}`,
      bytes: datagram.bytes.length,
    })
  }

  // ── wiring ──

  private openProfile(): void {
    this.profile.open(this.config.profile ?? defaultProfileDir(this.settings.name))
    this.profile.lock()
    this.hooks.stop.tap({ name: 'core', stage: 200 }, () => this.profile.unlock())
    this.profileLog?.open(this.profile.path('udsu.log'))
  }

  private registerServices(): void {
    const profile = this.profile
    const transports = new TransportRegistry(this.hooks, (datagram) => {
      this.receive(datagram).catch((error) =>
        this.logger.error(`incoming datagram failed: ${(error as Error).message}`),
      )
    })
    this.container.register({
      hooks: asValue(this.hooks),
      logger: asValue(this.logger),
      settings: asValue(this.settings),
      me: asValue(this.me),
      profile: asValue(profile),
      peers: asValue(this.peersDirectory),
      transports: asValue(transports),
      commands: asValue(new CommandRegistry()),
      chat: asValue(this as Chat),
      pipeline: asValue(this as Pipeline),
      services: asValue(new ServiceRegistry()),
    })
    for (const { definition, options } of this.plugins) {
      const key = `plugin:${definition.name}`
      this.container.register(
        key,
        asFunction((cradle: CoreServices) => definition.create(cradle, options) ?? {}).singleton(),
      )
      try {
        this.container.resolve(key)
      } catch (error) {
        // A plugin that cannot be built (a command name already taken, bad wiring) stops the start, named.
        throw error instanceof PluginFailure
          ? error
          : new PluginFailure(definition.name, 'create', describeThrown(error))
      }
    }
  }

  /**
   * Wraps every tap by what its hook is for. On `configure`, `init` and `start` a failure fails the start, naming the
   * plugin (PluginFailure). Elsewhere a tap that throws, rejects or hangs past `hookTimeoutMs` is reported by name and
   * the client goes on as if it had passed; except on `compose`, where any failure stops the message (never fail open).
   * A refusal (Veto, from any copy of udsu) always passes through as it is.
   */
  private isolateTaps(): void {
    for (const [hookName, hook] of Object.entries(this.hooks) as Array<[keyof Hooks, Hook<unknown[], unknown>]>) {
      hook.intercept({
        register: (tap) => {
          const plugin = tap.name
          const fail = this.tapFailureHandler(hookName, plugin)
          // configure waits for a person at a start screen, init may generate a key: only taps that should be quick are timed.
          const timeoutMs = LIFECYCLE_STEPS.has(hookName)
            ? undefined
            : (this.config.hookTimeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS)
          const fn = hookName === 'encode' ? keepSealedBytes(tap.fn as TapFn) : (tap.fn as TapFn)
          if (tap.type === 'sync') {
            tap.fn = (...args: unknown[]) => {
              try {
                return fn(...args)
              } catch (error) {
                return fail(error)
              }
            }
          } else if (tap.type === 'promise') {
            tap.fn = async (...args: unknown[]) => {
              try {
                return await withTimeout(Promise.resolve(fn(...args)), timeoutMs, () => hungTap(timeoutMs))
              } catch (error) {
                return fail(error)
              }
            }
          } else {
            tap.fn = (...args: unknown[]) => {
              const callback = args.pop() as (error?: unknown, result?: unknown) => void
              // The tap's error is passed on as it came, so that fail() can recognise a refusal from any copy of udsu.
              const finished = new Promise<unknown>((resolve, reject) =>
                // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
                fn(...args, (error: unknown, result: unknown) => (error ? reject(error) : resolve(result))),
              )
              withTimeout(finished, timeoutMs, () => hungTap(timeoutMs)).then(
                (result) => callback(undefined, result),
                (error) => {
                  // fail() either reports (the tap counts as passed) or throws what must go on up: call back once, either way.
                  let passOn: unknown
                  try {
                    fail(error)
                  } catch (rethrown) {
                    passOn = rethrown
                  }
                  callback(passOn)
                },
              )
            }
          }
          return tap
        },
      })
    }
  }

  /** What a failed tap leads to: a refusal goes on up; on a lifecycle step the start fails; on compose the message stops; else a report. */
  private tapFailureHandler(hookName: keyof Hooks, plugin: string): (error: unknown) => undefined {
    return (error) => {
      if (isVeto(error) && BYTE_TRANSFORMS.has(hookName))
        this.logger.debug(`plugin "${plugin}" refused a packet in ${hookName}: ${describeThrown(error)}`)
      if (isVeto(error) || error instanceof PluginFailure) throw error
      if (LIFECYCLE_STEPS.has(hookName))
        throw new PluginFailure(plugin, hookName as 'configure' | 'init' | 'start', describeThrown(error))
      const message = `plugin "${plugin}" failed in hook ${hookName}: ${describeThrown(error)}`
      this.logger.error(message)
      if (hookName !== 'problem') this.hooks.problem.call({ source: plugin, message })
      // A filter that crashed has not approved the message: it is refused, not sent as if the filter had passed.
      if (hookName === 'compose') throw new Veto(`not sent: the plugin "${plugin}" failed while checking it`)
      // Passing the bytes on untransformed would send, or read, what the transform never approved: the packet stops.
      if (BYTE_TRANSFORMS.has(hookName)) throw new TransformFailed(message)
      return undefined
    }
  }
}

/** Taps that transform a packet's bytes (`encode`, `decode`): a failure drops that packet (see tapFailureHandler). */
const BYTE_TRANSFORMS: ReadonlySet<keyof Hooks> = new Set(['encode', 'decode'])

type TapFn = (...args: unknown[]) => unknown

/**
 * An `encode` tap that changed bytes already sealed would make them unreadable to the peer's `decrypt`, silently: it
 * fails instead, naming the fix (a transform taps before the encryption).
 */
function keepSealedBytes(fn: TapFn): TapFn {
  return (...args) => {
    const before = args[0] as PeerPacket
    const check = (after: unknown) => {
      const bytes = (after as Partial<PeerPacket> | undefined)?.bytes
      if (
        before.sealed &&
        bytes !== undefined &&
        bytes !== before.bytes &&
        !(Buffer.isBuffer(bytes) && bytes.equals(before.bytes))
      ) {
        throw new Error(
          'changed the bytes of a packet the encryption had already sealed: tap encode at a stage below 0, before the encryption',
        )
      }
      return after
    }
    const result = fn(...args)
    return result instanceof Promise ? result.then(check) : check(result)
  }
}

/** A byte transform failed: the packet was dropped. Not a refusal: a delivery plugin may send the data again. */
class TransformFailed extends Error {}

/** The hooks of the start: a failure in one of their taps stops the client (see PluginFailure). */
const LIFECYCLE_STEPS: ReadonlySet<keyof Hooks> = new Set(['configure', 'init', 'start'])

function hungTap(timeoutMs: number | undefined): Error {
  return new Error(`did not finish within ${timeoutMs} ms (hookTimeoutMs); the client went on without it`)
}

/** Settles as `work` does, or rejects with `timeoutError()` after `ms` (never, when `ms` is undefined). */
function withTimeout<T>(work: Promise<T>, ms: number | undefined, timeoutError: () => Error): Promise<T> {
  if (ms === undefined) return work
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError()), ms)
  })
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}
