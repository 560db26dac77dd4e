// `udsu server --metrics`: a real server process, real registrations, an introduction, relayed frames and drops, then a
// Prometheus scrape over HTTP that must show each counter moved.
import { expect } from 'chai'
import * as dgram from 'node:dgram'
import * as net from 'node:net'
import { encodeFrame, FrameKind } from '../../core/wire'
import { ServerProcess, trackProcesses } from '../../test/support/processes'
import { encodeRelay } from '../../protocol'
import { runCli, UdpPeer } from './operator-support'

/** The value of one sample line (`name{labels} value`) of a Prometheus text exposition. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  if (!line) throw new Error(`no ${series} in the scrape:\n${text}`)
  return Number(line.slice(series.length + 1))
}

async function scrape(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) })
  expect(response.status).to.equal(200)
  expect(response.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/)
  return response.text()
}

describe('udsu server --metrics', function () {
  this.timeout(60_000)
  const track = trackProcesses()

  it("serves the server's counters and the process metrics, and they follow what happens", async () => {
    const server = track(await ServerProcess.start({ args: ['--relay', '--metrics', '127.0.0.1:0'] }))
    const line = server.lines.find((l) => l.startsWith('udsu server metrics on '))
    const url = line?.split(' ').pop() ?? ''
    expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/)

    const before = await scrape(url)
    expect(sample(before, 'udsu_server_registered_clients')).to.equal(0)
    expect(sample(before, 'udsu_server_registrations_total')).to.equal(0)
    expect(before).to.include('process_cpu_user_seconds_total') // prom-client's default metrics
    expect(before).to.include('nodejs_eventloop_lag_seconds')

    const at = { address: '127.0.0.1', port: server.port }
    const alice = await UdpPeer.open(at)
    const bob = await UdpPeer.open(at)
    const stranger = await UdpPeer.open(at)
    const relayed = encodeRelay('bob', encodeFrame(FrameKind.Data, Buffer.alloc(100, 7)))
    try {
      expect((await alice.register('alice')).t).to.equal('registered')
      expect((await bob.register('bob')).t).to.equal('registered')
      expect((await alice.request({ t: 'connect', to: 'bob' })).t).to.equal('intro')
      expect((await alice.request({ t: 'relay', to: 'bob' })).ready).to.equal(false)
      expect((await bob.request({ t: 'relay', to: 'alice' })).ready).to.equal(true)
      await stranger.sendRaw(relayed) // not registered: refused
      await alice.sendSealed(relayed)
      await bob.waitFor((m) => m.t === '<not a server frame>', 'the relayed frame at bob')
      await stranger.send({ t: 'list', rid: '2', pad: 'x'.repeat(80) }) // not registered
      await stranger.waitFor((m) => m.t === 'error' && m.code === 'not_registered', 'not_registered')
    } finally {
      alice.close()
      bob.close()
      stranger.close()
    }
    // A flood from one address: past the burst of 200, datagrams are dropped by the rate limit (600, as a busy kernel
    // may drop some before the server reads them).
    const flooder = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => flooder.bind(0, '127.0.0.1', resolve))
    const junk = Buffer.from('not a udsu frame')
    await Promise.all(
      Array.from(
        { length: 600 },
        () => new Promise<void>((resolve) => flooder.send(junk, server.port, '127.0.0.1', () => resolve())),
      ),
    )
    flooder.close()

    // The counters move as the datagrams are handled: scrape until the flood has been counted (bounded).
    let after = ''
    for (const deadline = Date.now() + 5000; Date.now() < deadline;) {
      after = await scrape(url)
      if (sample(after, 'udsu_server_rate_limited_total') > 0) break
    }
    expect(sample(after, 'udsu_server_registered_clients')).to.equal(2)
    expect(sample(after, 'udsu_server_registrations_total')).to.equal(2)
    expect(sample(after, 'udsu_server_introductions_total')).to.equal(1)
    expect(sample(after, 'udsu_server_relayed_frames_total')).to.equal(1)
    expect(sample(after, 'udsu_server_relayed_bytes_total')).to.equal(relayed.length - 'bob'.length + 'alice'.length)
    expect(sample(after, 'udsu_server_dropped_total{reason="relay_refused"}')).to.equal(1)
    expect(sample(after, 'udsu_server_dropped_total{reason="unregistered"}')).to.equal(1)
    expect(sample(after, 'udsu_server_dropped_total{reason="malformed"}')).to.be.greaterThan(0)
    expect(sample(after, 'udsu_server_rate_limited_total')).to.be.greaterThan(0)
    // The bucket of 200 (shared by every datagram from 127.0.0.1) emptied before any datagram was limited.
    expect(sample(after, 'udsu_server_datagrams_received_total')).to.be.at.least(
      200 + sample(after, 'udsu_server_rate_limited_total'),
    )
    expect(after).to.match(/# TYPE udsu_server_registrations_total counter/)

    const elsewhere = await fetch(url.replace('/metrics', '/'), { signal: AbortSignal.timeout(5000) })
    expect(elsewhere.status).to.equal(404)
  })

  it('a metrics port that is taken stops the server with exit 1 and says which', async () => {
    const holder = net.createServer()
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
    const taken = (holder.address() as net.AddressInfo).port
    try {
      const run = await runCli(['server', '--host', '127.0.0.1', '--port', '0', '--metrics', `127.0.0.1:${taken}`])
      expect(run.code).to.equal(1)
      expect(run.stderr).to.include(`udsu: the metrics endpoint cannot listen on 127.0.0.1:${taken}: listen EADDRINUSE`)
    } finally {
      holder.close()
    }
  })
})
