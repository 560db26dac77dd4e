// The NAT lab: an "internet" and real Linux NAT routers built from network namespaces, for hole-punching tests.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { accessSync, constants as fsConstants } from 'node:fs'
import path from 'node:path'

export type NatType = 'eim' | 'symmetric'

export interface LabSpec {
  /** NAT routers. `eim`: endpoint-independent, port-preserving mapping; `symmetric`: a random port per destination. */
  nats?: { name: string; type: NatType }[]
  /** Hosts; `behind` names a NAT, absent means a public host on the internet. */
  hosts: { name: string; behind?: string }[]
}

export interface Endpoint {
  address: string
  port: number
}

/** One UDP conntrack entry of a router whose original source is on its LAN: a NAT mapping. */
export interface NatMapping {
  private: Endpoint
  remote: Endpoint
  public: Endpoint
  /** The router has seen a datagram coming back. */
  replied: boolean
  /** Seconds until the kernel forgets the mapping unless traffic refreshes it. */
  expiresInSec: number
}

export interface LabHost {
  readonly name: string
  /** The network namespace the host lives in (`ip netns exec <ns> ...`). */
  readonly ns: string
  /** Its own address: 198.18.0.x for a public host, 10.n.0.x behind a NAT. */
  readonly ip: string
  /** Where the internet sees it: its own address, or its router's WAN address. */
  readonly publicIp: string
  readonly nat: LabNat | undefined
  /** Starts `command` inside the host; the lab kills it on teardown if it still runs. */
  spawn(command: string, args?: readonly string[], options?: SpawnOptions): ChildProcess
  /** Runs `file` (no shell) inside the host and resolves with its stdout; rejects with its stderr on failure. */
  exec(file: string, args?: readonly string[], options?: { input?: string; timeoutMs?: number }): Promise<string>
  /** Drops each datagram in and out of the host with `probability` (0 removes the loss, 1 drops everything). */
  setLoss(probability: number): Promise<void>
  /** Packets dropped, in both directions, by the loss set with the last `setLoss` (each call resets the count). */
  lossDrops(): Promise<number>
}

export interface LabNat {
  readonly name: string
  readonly type: NatType
  readonly ns: string
  /** The router's public address on the internet. */
  readonly wanIp: string
  /** The router's address on its LAN, the default gateway of the hosts behind it. */
  readonly lanIp: string
  /** The LAN subnet, e.g. `10.1.0.0/24`. */
  readonly lanSubnet: string
  /** Sets how long an idle UDP mapping lives (unreplied and replied). Applies to mappings created or refreshed after the call. */
  setUdpTimeout(seconds: number): Promise<void>
  /** Forgets every mapping (`conntrack -F`), as a NAT reboot does. */
  flush(): Promise<void>
  /**
   * Makes the router map to public ports in `min`..`max` only (or its usual range with no arguments) and forgets every
   * mapping: the hosts behind it get new public ports, as when an ISP's NAT reboots or a DHCP lease moves them.
   */
  setPortRange(min?: number, max?: number): Promise<void>
  /** The live UDP mappings of hosts behind this router. */
  mappings(): Promise<NatMapping[]>
  /** Packets from the internet dropped so far by the router's firewall (unsolicited or expired mappings). */
  wanDrops(): Promise<number>
  /**
   * Drops everything between the hosts behind this router and `remoteIp`, both ways, as a firewall rule added on the
   * router would (`blocked` false lifts it). Traffic to every other address is untouched.
   */
  block(remoteIp: string, blocked?: boolean): Promise<void>
  /** Runs `file` inside the router namespace, as `LabHost.exec`. */
  exec(file: string, args?: readonly string[], options?: { input?: string; timeoutMs?: number }): Promise<string>
}

export interface Lab {
  /** Short id in every namespace name of this lab, e.g. `1234-0`. */
  readonly runId: string
  /** Every namespace this lab made (internet, routers, hosts). */
  readonly namespaces: readonly string[]
  readonly hosts: readonly LabHost[]
  readonly nats: readonly LabNat[]
  host(name: string): LabHost
  nat(name: string): LabNat
  /** Kills the programs started in the lab and removes its namespaces, with every interface in them. Idempotent. */
  teardown(): Promise<void>
}

/** Prefix of every namespace the lab makes: `udsu-lab-<pid>-<lab#>-<role>`; the pid lets `cleanupStale` find dead runs. */
export const NS_PREFIX = 'udsu-lab-'
const INTERNET_SUBNET = '198.18.0'
const NAME_PATTERN = /^[a-z][a-z0-9]{0,11}$/
const COMMAND_TIMEOUT_MS = 15_000
const WAN_DROP_TAG = 'udsu-lab-wan-drop'
const LOSS_CHAIN = 'UDSU_LAB_LOSS'

type Availability = { ok: true } | { ok: false; reason: string }
let availability: Availability | undefined

/** Whether this process can build labs: root, `ip`, `iptables` and `conntrack` present, and namespaces creatable. */
export function labAvailable(): Availability {
  availability ??= probeAvailability()
  return availability
}

function probeAvailability(): Availability {
  if (process.platform !== 'linux') return { ok: false, reason: `the NAT lab needs Linux, this is ${process.platform}` }
  if (process.getuid?.() !== 0) return { ok: false, reason: 'the NAT lab needs root (network namespaces and iptables)' }
  const missing = [
    ['ip', 'iproute2'],
    ['iptables', 'iptables'],
    ['iptables-restore', 'iptables'],
    ['conntrack', 'conntrack'],
  ].filter(([tool]) => findTool(tool) === undefined)
  if (missing.length > 0) {
    const tools = missing.map(([tool, pkg]) => `${tool} (Debian package ${pkg})`).join(', ')
    return { ok: false, reason: `the NAT lab needs ${tools}: apt-get install -y iproute2 iptables conntrack` }
  }
  // Root in a container without CAP_SYS_ADMIN/CAP_NET_ADMIN passes the checks above but cannot make namespaces.
  const probe = `${NS_PREFIX}${process.pid}-probe`
  const add = spawnSync(tool('ip'), ['netns', 'add', probe], { encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS })
  if (add.status !== 0)
    return {
      ok: false,
      reason: `cannot create a network namespace: ${(add.stderr || add.error?.message || '').trim()}`,
    }
  spawnSync(tool('ip'), ['netns', 'del', probe], { timeout: COMMAND_TIMEOUT_MS })
  return { ok: true }
}

/**
 * Mocha guard for a suite that needs the lab: `before(requireLab)`.
 * Skips the suite with the reason when the lab is unavailable, but fails it when `CI` is set: lab tests never skip in CI.
 */
export function requireLab(this: Mocha.Context): void {
  const result = labAvailable()
  if (result.ok) return
  if (process.env.CI) throw new Error(`NAT lab unavailable in CI (lab tests must not skip): ${result.reason}`)
  // Mocha prints the title of a skipped suite, not a reason: say it once here.
  console.warn(`NAT lab tests skipped: ${result.reason}`)
  this.skip()
}

const toolPaths = new Map<string, string | undefined>()

// sbin directories are searched too: a non-login root shell may not have them on PATH.
function findTool(name: string): string | undefined {
  if (!toolPaths.has(name)) {
    const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin']
    const found = dirs
      .filter(Boolean)
      .map((dir) => path.join(dir, name))
      .find((candidate) => {
        try {
          accessSync(candidate, fsConstants.X_OK)
          return true
        } catch {
          return false
        }
      })
    toolPaths.set(name, found)
  }
  return toolPaths.get(name)
}

function tool(name: string): string {
  const found = findTool(name)
  if (found === undefined)
    throw new Error(`NAT lab: '${name}' not found on PATH or in /usr/sbin; see test/lab/README.md for the packages`)
  return found
}

interface RunOptions {
  input?: string
  timeoutMs?: number
}

/** Runs a program to completion, resolving with stdout; the error names the command, exit status and stderr. */
function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const timeoutMs = options.timeoutMs ?? COMMAND_TIMEOUT_MS
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', (error) => {
      clearTimeout(timer)
      reject(new Error(`NAT lab: cannot run ${file}: ${error.message}`))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) return resolve(stdout)
      const status = signal === 'SIGKILL' ? `killed after ${timeoutMs} ms` : `exit ${code ?? signal}`
      reject(
        new Error(`NAT lab: \`${[file, ...args].join(' ')}\` failed (${status}): ${stderr.trim() || stdout.trim()}`),
      )
    })
    child.stdin.on('error', () => undefined) // the program may exit before reading its input; 'close' reports why
    child.stdin.end(options.input ?? '')
  })
}

function runIn(ns: string, file: string, args: readonly string[], options?: RunOptions): Promise<string> {
  return run(tool('ip'), ['netns', 'exec', ns, file, ...args], options)
}

/** Sets a sysctl inside a namespace by writing /proc/sys there, so the lab needs no procps. */
function writeSysctl(ns: string, key: string, value: number): Promise<string> {
  const file = `/proc/sys/${key.replace(/\./g, '/')}`
  return runIn(ns, '/bin/sh', ['-c', 'printf %s "$1" > "$2"', 'sysctl', String(value), file])
}

/** Feeds `ip -batch` so a namespace is configured by one process, not one per command. */
function ipBatch(ns: string | undefined, lines: readonly string[]): Promise<string> {
  if (lines.length === 0) return Promise.resolve('')
  const args = ns === undefined ? ['-batch', '-'] : ['-n', ns, '-batch', '-']
  return run(tool('ip'), args, { input: lines.join('\n') + '\n' })
}

// ---- bookkeeping shared by every lab of this process, so exit and signals can clean up synchronously ----

interface LiveLab {
  namespaces: string[]
  children: Set<ChildProcess>
}

const liveLabs = new Set<LiveLab>()
let labCounter = 0
let exitHooksInstalled = false
let staleCleaned = false

function teardownSync(live: LiveLab): void {
  for (const child of live.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  for (const ns of live.namespaces)
    spawnSync(tool('ip'), ['netns', 'del', ns], { stdio: 'ignore', timeout: COMMAND_TIMEOUT_MS })
  liveLabs.delete(live)
}

function installExitHooks(): void {
  if (exitHooksInstalled) return
  exitHooksInstalled = true
  process.on('exit', () => [...liveLabs].forEach(teardownSync))
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      ;[...liveLabs].forEach(teardownSync)
      process.removeListener(signal, onSignal)
      // With nobody else listening, die of the signal as the process would have without us.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
    }
    process.on(signal, onSignal)
  }
}

/** Removes namespaces (and the programs inside them) left by lab runs whose process is gone. Returns their names. */
export async function cleanupStale(): Promise<string[]> {
  const listing = await run(tool('ip'), ['netns', 'list'])
  const stale = listing
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0])
    .filter((ns) => ns.startsWith(NS_PREFIX))
    .filter((ns) => {
      const pid = Number(/^udsu-lab-(\d+)-/.exec(ns)?.[1])
      return Number.isInteger(pid) && pid !== process.pid && !processAlive(pid)
    })
  for (const ns of stale) {
    // Orphans keep a namespace (and its interfaces) alive after `ip netns del`: kill them first.
    const pids = await run(tool('ip'), ['netns', 'pids', ns]).catch(() => '')
    for (const pid of pids.split(/\s+/).filter(Boolean).map(Number)) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    await run(tool('ip'), ['netns', 'del', ns]).catch(() => undefined)
  }
  return stale
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

// ---- spec checks ----

function specProblems(spec: LabSpec): string[] {
  const problems: string[] = []
  const nats = spec.nats ?? []
  const natNames = new Set<string>()
  nats.forEach((nat, i) => {
    if (!NAME_PATTERN.test(nat.name))
      problems.push(`nats[${i}].name '${nat.name}' must match ${NAME_PATTERN} (it goes into interface names)`)
    if (natNames.has(nat.name)) problems.push(`nats[${i}].name '${nat.name}' is used twice`)
    natNames.add(nat.name)
    if (nat.type !== 'eim' && nat.type !== 'symmetric')
      problems.push(`nats[${i}].type must be 'eim' or 'symmetric', got '${String(nat.type)}'`)
  })
  const hostNames = new Set<string>()
  spec.hosts.forEach((host, i) => {
    if (!NAME_PATTERN.test(host.name))
      problems.push(`hosts[${i}].name '${host.name}' must match ${NAME_PATTERN} (it goes into interface names)`)
    if (hostNames.has(host.name)) problems.push(`hosts[${i}].name '${host.name}' is used twice`)
    hostNames.add(host.name)
    if (host.behind !== undefined && !natNames.has(host.behind)) {
      problems.push(`hosts[${i}].behind '${host.behind}' names no NAT (nats: ${[...natNames].join(', ') || 'none'})`)
    }
  })
  if (nats.length > 250) problems.push(`at most 250 NATs, got ${nats.length}`)
  const publicCount = nats.length + spec.hosts.filter((host) => host.behind === undefined).length
  if (publicCount > 250) problems.push(`at most 250 public addresses (NATs + public hosts), got ${publicCount}`)
  for (const nat of nats) {
    const behind = spec.hosts.filter((host) => host.behind === nat.name).length
    if (behind > 250) problems.push(`at most 250 hosts behind NAT '${nat.name}', got ${behind}`)
  }
  return problems
}

// ---- building ----

/** The router's rules: NAT on the WAN, and the stateful firewall of a home router (only replies come in). */
/** The router's NAT rule after `-o wan`; a port range needs a protocol, so a ranged rule maps UDP only (all the lab uses). */
function masqueradeRule(type: NatType, ports?: string): string {
  return `${ports ? '-p udp ' : ''}-j MASQUERADE${ports ? ` --to-ports ${ports}` : ''}${type === 'symmetric' ? ' --random-fully' : ''}`
}

function routerRules(type: NatType): string {
  const masquerade = masqueradeRule(type)
  // Dropping unsolicited WAN traffic before conntrack confirms it matters: a confirmed stray entry would collide
  // with the mapping a hole punch needs and make Linux pick another port, which real routers do not do.
  const drop = `-m comment --comment ${WAN_DROP_TAG} -j DROP`
  return [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    `-A POSTROUTING -o wan ${masquerade}`,
    'COMMIT',
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    '-A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
    `-A INPUT -i wan ${drop}`,
    '-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
    `-A FORWARD -i wan ${drop}`,
    '-A FORWARD -m conntrack --ctstate INVALID -j DROP',
    'COMMIT',
    '',
  ].join('\n')
}

/** Builds the topology of `spec`; on any failure it removes what it made and rethrows. */
export async function buildLab(spec: LabSpec): Promise<Lab> {
  const problems = specProblems(spec)
  if (problems.length > 0) throw new Error(`buildLab: invalid spec:\n  - ${problems.join('\n  - ')}`)
  const available = labAvailable()
  if (!available.ok) throw new Error(`buildLab: ${available.reason}`)
  installExitHooks()
  if (!staleCleaned) {
    staleCleaned = true
    await cleanupStale()
  }

  const runId = `${process.pid}-${labCounter++}`
  const nsName = (role: string): string => `${NS_PREFIX}${runId}-${role}`
  const internetNs = nsName('net')
  const live: LiveLab = { namespaces: [internetNs], children: new Set() }
  liveLabs.add(live)

  const nats = new Map<string, NatImpl>()
  let publicOctet = 2
  ;(spec.nats ?? []).forEach((natSpec, index) => {
    const subnet = `10.${index + 1}.0`
    const nat = new NatImpl(
      natSpec.name,
      natSpec.type,
      nsName(`nat-${natSpec.name}`),
      `${INTERNET_SUBNET}.${publicOctet++}`,
      `${subnet}.1`,
      `${subnet}.0/24`,
    )
    nats.set(nat.name, nat)
    live.namespaces.push(nat.ns)
  })
  const lanOctets = new Map<string, number>()
  const hosts = new Map<string, HostImpl>()
  for (const hostSpec of spec.hosts) {
    const nat = hostSpec.behind === undefined ? undefined : nats.get(hostSpec.behind)
    let ip: string
    if (nat === undefined) {
      ip = `${INTERNET_SUBNET}.${publicOctet++}`
    } else {
      const octet = lanOctets.get(nat.name) ?? 2
      lanOctets.set(nat.name, octet + 1)
      ip = `${nat.lanSubnet.split('.').slice(0, 3).join('.')}.${octet}`
    }
    const host = new HostImpl(hostSpec.name, nsName(`host-${hostSpec.name}`), ip, nat, live)
    hosts.set(host.name, host)
    live.namespaces.push(host.ns)
  }

  try {
    await ipBatch(
      undefined,
      live.namespaces.map((ns) => `netns add ${ns}`),
    )

    // Links are created straight inside the namespaces, so no interface of the lab ever exists in the root namespace.
    const internet = ['link set lo up', 'link add inet type bridge', 'link set inet up']
    for (const nat of nats.values())
      internet.push(
        `link add r-${nat.name} type veth peer name wan netns ${nat.ns}`,
        `link set r-${nat.name} master inet up`,
      )
    const lans = new Map<NatImpl, string[]>()
    for (const nat of nats.values()) lans.set(nat, ['link add lan type bridge', 'link set lan up'])
    for (const host of hosts.values()) {
      const side = host.nat === undefined ? internet : lans.get(host.nat)!
      const bridge = host.nat === undefined ? 'inet' : 'lan'
      side.push(
        `link add h-${host.name} type veth peer name eth0 netns ${host.ns}`,
        `link set h-${host.name} master ${bridge} up`,
      )
    }
    await Promise.all([ipBatch(internetNs, internet), ...[...lans].map(([nat, lines]) => ipBatch(nat.ns, lines))])

    const steps: Promise<unknown>[] = []
    for (const nat of nats.values()) {
      steps.push(
        ipBatch(nat.ns, [
          'link set lo up',
          `addr add ${nat.wanIp}/24 dev wan`,
          'link set wan up',
          `addr add ${nat.lanIp}/24 dev lan`,
        ]),
        writeSysctl(nat.ns, 'net.ipv4.ip_forward', 1),
        runIn(nat.ns, tool('iptables-restore'), [], { input: routerRules(nat.type) }),
      )
    }
    for (const host of hosts.values()) {
      const lines = ['link set lo up', `addr add ${host.ip}/24 dev eth0`, 'link set eth0 up']
      if (host.nat !== undefined) lines.push(`route add default via ${host.nat.lanIp}`)
      steps.push(ipBatch(host.ns, lines))
    }
    await Promise.all(steps)
  } catch (error) {
    teardownSync(live)
    throw error
  }

  let tornDown: Promise<void> | undefined
  const lab: Lab = {
    runId,
    namespaces: [...live.namespaces],
    hosts: [...hosts.values()],
    nats: [...nats.values()],
    host(name) {
      const host = hosts.get(name)
      if (host === undefined)
        throw new Error(`lab ${runId} has no host '${name}' (hosts: ${[...hosts.keys()].join(', ')})`)
      return host
    },
    nat(name) {
      const nat = nats.get(name)
      if (nat === undefined)
        throw new Error(`lab ${runId} has no NAT '${name}' (nats: ${[...nats.keys()].join(', ') || 'none'})`)
      return nat
    },
    teardown() {
      tornDown ??= teardown(live)
      return tornDown
    },
  }
  return lab
}

async function teardown(live: LiveLab): Promise<void> {
  liveLabs.delete(live)
  const exits = [...live.children].map((child) => {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill('SIGKILL')
    return exited
  })
  await Promise.all(exits)
  await Promise.all(
    live.namespaces.map((ns) =>
      run(tool('ip'), ['netns', 'del', ns]).catch((error: Error) => {
        if (!/No such file or directory/.test(error.message)) throw error
      }),
    ),
  )
}

/** Sums the packet counters of the rules that `match` in `iptables-save -c` output. */
function countPackets(save: string, match: (rule: string) => boolean): number {
  let total = 0
  for (const line of save.split('\n')) {
    const counter = /^\[(\d+):\d+\] (.*)$/.exec(line)
    if (counter && match(counter[2])) total += Number(counter[1])
  }
  return total
}

class NatImpl implements LabNat {
  constructor(
    readonly name: string,
    readonly type: NatType,
    readonly ns: string,
    readonly wanIp: string,
    readonly lanIp: string,
    readonly lanSubnet: string,
  ) {}

  exec(file: string, args: readonly string[] = [], options?: RunOptions): Promise<string> {
    return runIn(this.ns, file, args, options)
  }

  async setUdpTimeout(seconds: number): Promise<void> {
    if (!Number.isInteger(seconds) || seconds < 1)
      throw new Error(`NAT '${this.name}': setUdpTimeout needs whole seconds >= 1, got ${seconds}`)
    // Both: a mapping that has seen a reply for over 2 s moves from the first timeout to the stream one.
    await writeSysctl(this.ns, 'net.netfilter.nf_conntrack_udp_timeout', seconds)
    await writeSysctl(this.ns, 'net.netfilter.nf_conntrack_udp_timeout_stream', seconds)
  }

  async flush(): Promise<void> {
    await this.exec(tool('conntrack'), ['-F'])
  }

  async setPortRange(min?: number, max?: number): Promise<void> {
    const valid = (port: number | undefined) =>
      port !== undefined && Number.isInteger(port) && port >= 1024 && port <= 65535
    if ((min !== undefined || max !== undefined) && !(valid(min) && valid(max) && min! <= max!)) {
      throw new Error(`NAT '${this.name}': setPortRange needs 1024 <= min <= max <= 65535, got ${min}..${max}`)
    }
    const ports = min === undefined ? undefined : `${min}-${max}`
    // -R keeps the rule's place: the NAT rule is the first and only one in POSTROUTING.
    await this.exec(tool('iptables'), [
      '-t',
      'nat',
      '-R',
      'POSTROUTING',
      '1',
      '-o',
      'wan',
      ...masqueradeRule(this.type, ports).split(' '),
    ])
    await this.flush()
  }

  async mappings(): Promise<NatMapping[]> {
    const listing = await this.exec(tool('conntrack'), ['-L', '-p', 'udp'])
    const lanPrefix = this.lanSubnet.split('.').slice(0, 3).join('.') + '.'
    const mappings: NatMapping[] = []
    for (const line of listing.split('\n')) {
      const fields = line.trim().split(/\s+/)
      if (fields[0] !== 'udp') continue
      const values = (key: string): string[] =>
        fields.filter((field) => field.startsWith(`${key}=`)).map((field) => field.slice(key.length + 1))
      // The first src/dst/sport/dport are the original direction, the second the reply: its destination is the public side.
      const [src, replyDst] = [values('src')[0], values('dst')[1]]
      const [dst, sport, dport, replyDport] = [
        values('dst')[0],
        values('sport')[0],
        values('dport')[0],
        values('dport')[1],
      ]
      if (!src?.startsWith(lanPrefix) || replyDst === undefined) continue
      mappings.push({
        private: { address: src, port: Number(sport) },
        remote: { address: dst, port: Number(dport) },
        public: { address: replyDst, port: Number(replyDport) },
        replied: !fields.includes('[UNREPLIED]'),
        expiresInSec: Number(fields[2]),
      })
    }
    return mappings
  }

  async wanDrops(): Promise<number> {
    const save = await this.exec(tool('iptables-save'), ['-c', '-t', 'filter'])
    return countPackets(save, (rule) => rule.includes(`--comment ${WAN_DROP_TAG}`))
  }

  async block(remoteIp: string, blocked = true): Promise<void> {
    // FORWARD sees the hosts' packets before SNAT and the answers after de-NAT: the remote address is the same in both.
    for (const match of [
      ['-d', remoteIp],
      ['-s', remoteIp],
    ]) {
      await this.exec(tool('iptables'), [blocked ? '-I' : '-D', 'FORWARD', ...match, '-j', 'DROP'])
    }
  }
}

class HostImpl implements LabHost {
  readonly publicIp: string
  private lossChainReady = false

  constructor(
    readonly name: string,
    readonly ns: string,
    readonly ip: string,
    readonly nat: NatImpl | undefined,
    private readonly live: LiveLab,
  ) {
    this.publicIp = nat?.wanIp ?? ip
  }

  spawn(command: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
    const child = spawn(tool('ip'), ['netns', 'exec', this.ns, command, ...args], options)
    this.live.children.add(child)
    child.once('exit', () => this.live.children.delete(child))
    return child
  }

  exec(file: string, args: readonly string[] = [], options?: RunOptions): Promise<string> {
    return runIn(this.ns, file, args, options)
  }

  async setLoss(probability: number): Promise<void> {
    if (!(probability >= 0 && probability <= 1))
      throw new Error(`host '${this.name}': setLoss needs a probability in [0, 1], got ${probability}`)
    const rules = ['*filter', `:${LOSS_CHAIN} - [0:0]`] // declaring the chain flushes it
    if (!this.lossChainReady) rules.push(`-A INPUT ! -i lo -j ${LOSS_CHAIN}`, `-A OUTPUT ! -o lo -j ${LOSS_CHAIN}`)
    if (probability === 1) rules.push(`-A ${LOSS_CHAIN} -j DROP`)
    else if (probability > 0)
      rules.push(`-A ${LOSS_CHAIN} -m statistic --mode random --probability ${probability} -j DROP`)
    rules.push('COMMIT', '')
    await this.exec(tool('iptables-restore'), ['--noflush'], { input: rules.join('\n') })
    this.lossChainReady = true
  }

  async lossDrops(): Promise<number> {
    if (!this.lossChainReady) return 0
    const save = await this.exec(tool('iptables-save'), ['-c', '-t', 'filter'])
    return countPackets(save, (rule) => rule.startsWith(`-A ${LOSS_CHAIN} `))
  }
}

/**
 * Polls `check` until it holds, for kernel state that gives no event to await (counters, conntrack entries).
 * Bounded in time and in attempts; the error says what was awaited.
 */
export async function pollUntil(
  what: string,
  check: () => Promise<boolean> | boolean,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000
  const intervalMs = options.intervalMs ?? 100
  const deadline = Date.now() + timeoutMs
  const maxAttempts = Math.ceil(timeoutMs / intervalMs) + 1
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    if (await check()) return
    if (Date.now() >= deadline) break
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`)
}
