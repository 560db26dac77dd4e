// What deploy/ ships, checked offline: the systemd unit (systemd-analyze verify, its hardening, its ExecStart flags run
// for real), the container definition (its entrypoint, command and health check run for real, its ports exposed) and the
// firewall rules (the same ports; nft -c where nft is installed).
import { expect } from 'chai'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { CLI, ROOT, ServerProcess, tempDir, trackProcesses } from '../../test/support/processes'
import { loadServerSettings, parseServerFlags, type ServerSettings } from '../options'
import { runCli } from './operator-support'

const DEPLOY = path.join(ROOT, 'deploy')
const read = (name: string) => fs.readFileSync(path.join(DEPLOY, name), 'utf8')

/** The settings a server command line gives (with no config file), through the CLI's own parser. */
async function settingsOf(flags: string[]): Promise<ServerSettings> {
  const parsed = parseServerFlags(flags)
  if (parsed.help) throw new Error('--help in a deployment command')
  return loadServerSettings(parsed.config, parsed.overrides, tempDir('udsu-deploy-'))
}

/** Outside CI a missing tool skips its check with the reason; in CI it fails. */
function needTool(context: Mocha.Context, tool: string): void {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0) return
  if (process.env.CI) throw new Error(`${tool} is needed to check deploy/ in CI`)
  context.skip()
}

const unit = read('udsu-server.service')
const execStart = /^ExecStart=(.*)$/m.exec(unit)![1].split(/\s+/)
const dockerfile = read('Dockerfile')
const jsonInstruction = (name: string): string[] =>
  JSON.parse(new RegExp(`^${name} (\\[.*\\])$`, 'm').exec(dockerfile)![1]) as string[]

describe('deploy/', function () {
  this.timeout(60_000)
  const track = trackProcesses()

  /** Runs `udsu server` with these flags for real (its ports moved to free ones): it listens, answers, and drains. */
  async function runsWith(
    flags: string[],
    check: (server: ServerProcess) => Promise<void> = async () => undefined,
  ): Promise<void> {
    const server = track(
      await ServerProcess.start({
        args: [
          ...flags,
          '--port',
          '0',
          '--alt-port',
          '0',
          ...(flags.includes('--metrics') ? ['--metrics', '127.0.0.1:0'] : []),
        ],
      }),
    )
    expect((await runCli(['ping', server.address])).code).to.equal(0)
    await check(server)
    server.child.kill('SIGTERM')
    expect(await server.exited).to.equal(0)
  }

  describe('the systemd unit', () => {
    it('runs `udsu server` with flags the CLI accepts, and the server starts with them', async () => {
      expect(unit).to.not.match(/^ExecStart=.*["'\\]/m) // split on spaces above: no quoting to mislead it
      expect(execStart[0]).to.match(/\/udsu$/)
      expect(execStart[1]).to.equal('server')
      const settings = await settingsOf(execStart.slice(2))
      expect(settings).to.deep.include({ host: '::', port: 7777, relay: true, metrics: '127.0.0.1:9464' })
      await runsWith(execStart.slice(2))
    })

    it('has the hardening DEPLOY.md promises, and nothing that stops Node', () => {
      for (const line of [
        'DynamicUser=yes',
        'ProtectSystem=strict',
        'NoNewPrivileges=yes',
        'ProtectHome=yes',
        'PrivateTmp=yes',
        'PrivateDevices=yes',
        'CapabilityBoundingSet=',
        'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
        'SystemCallFilter=@system-service',
        'RestrictNamespaces=yes',
        'KillSignal=SIGTERM',
        'RestartPreventExitStatus=2',
      ]) {
        expect(unit.split('\n'), line).to.include(line)
      }
      expect(unit).to.not.match(/^MemoryDenyWriteExecute=yes/m) // V8's JIT needs writable code
    })

    it('passes systemd-analyze verify', function () {
      needTool(this, 'systemd-analyze')
      // verify checks that ExecStart's program exists: point it at this checkout's CLI, every other line as shipped.
      const copy = path.join(tempDir('udsu-unit-'), 'udsu-server.service')
      fs.writeFileSync(copy, unit.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath} ${CLI}`))
      const result = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8', timeout: 30_000 })
      expect(result.status, result.stderr).to.equal(0)
      expect(result.stderr.split('\n').filter((l) => l.includes(copy))).to.deep.equal([])
    })
  })

  describe('the container definition', () => {
    it('runs `udsu server` with flags the CLI accepts, exposes its ports, runs unprivileged, checks health with udsu ping', async () => {
      const entrypoint = jsonInstruction('ENTRYPOINT')
      const command = jsonInstruction('CMD')
      expect(entrypoint).to.deep.equal(['udsu', 'server'])
      const settings = await settingsOf(command)
      const exposed = /^EXPOSE (.*)$/m.exec(dockerfile)![1].split(' ')
      const metricsPort = Number(settings.metrics!.split(':').pop())
      expect(exposed).to.have.members([`${settings.port}/udp`, `${settings.port + 1}/udp`, `${metricsPort}/tcp`])
      expect(/^USER (\S+)$/m.exec(dockerfile)?.[1]).to.be.oneOf(['node', 'nobody'])
      expect(dockerfile).to.match(/^STOPSIGNAL SIGTERM$/m)

      const health = JSON.parse(/^HEALTHCHECK .* CMD (\[.*\])$/m.exec(dockerfile)![1]) as string[]
      expect(health.slice(0, 3)).to.deep.equal(['udsu', 'ping', `127.0.0.1:${settings.port}`])
      // The health check's own command line, pointed at the running server's port.
      await runsWith(command, async (server) => {
        expect((await runCli([health[1], server.address, ...health.slice(3)])).code).to.equal(0)
      })
    })
  })

  describe('the firewall rules', () => {
    const rules = read('nftables-udsu.nft')

    it("open the unit's UDP ports (main and main + 1) and keep the metrics port for the monitoring host", async () => {
      const settings = await settingsOf(execStart.slice(2))
      expect(/^define UDSU_PORTS = \{ (.*) \}$/m.exec(rules)?.[1]).to.equal(`${settings.port}, ${settings.port + 1}`)
      expect(/^define METRICS_PORT = (\d+)$/m.exec(rules)?.[1]).to.equal(settings.metrics!.split(':').pop())
      expect(rules).to.match(/^\s+tcp dport \$METRICS_PORT drop$/m)
    })

    it('pass nft -c', function () {
      needTool(this, 'nft')
      const result = spawnSync('nft', ['-c', '-f', path.join(DEPLOY, 'nftables-udsu.nft')], {
        encoding: 'utf8',
        timeout: 30_000,
      })
      expect(result.status, result.stderr).to.equal(0)
    })
  })
})
