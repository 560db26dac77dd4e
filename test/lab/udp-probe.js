#!/usr/bin/env node
// A tiny UDP endpoint driven over stdio, run inside lab namespaces by probe.ts (plain JS: it needs no tsx there).
// argv: [--port N] [--reflect] [--lifetime-ms N]
// stdout, one JSON per line: {"event":"listening","port":N}, then {"event":"message","from":{"address","port"},"data":"..."}
// stdin, one JSON per line: {"send":{"address","port","data"}}
// --reflect answers every datagram with JSON {"seen":{"address","port"},"data":"..."}: the source as this host saw it.
// It exits when stdin closes or after --lifetime-ms, so it never outlives the test that started it.
'use strict'
const dgram = require('node:dgram')
const readline = require('node:readline')

function option(name, fallback) {
  const at = process.argv.indexOf(name)
  return at === -1 ? fallback : process.argv[at + 1]
}

const port = Number(option('--port', '0'))
const reflect = process.argv.includes('--reflect')
const lifetimeMs = Number(option('--lifetime-ms', '120000'))
const socket = dgram.createSocket('udp4')
const print = (object) => process.stdout.write(JSON.stringify(object) + '\n')

socket.on('error', (error) => {
  process.stderr.write(`udp-probe: ${error.message}\n`)
  process.exit(1)
})
socket.on('message', (buffer, rinfo) => {
  const from = { address: rinfo.address, port: rinfo.port }
  const data = buffer.toString('utf8')
  print({ event: 'message', from, data })
  if (reflect) socket.send(JSON.stringify({ seen: from, data }), rinfo.port, rinfo.address)
})
socket.bind(port, () => print({ event: 'listening', port: socket.address().port }))

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === '') return
  const { send } = JSON.parse(line)
  socket.send(send.data, send.port, send.address)
})
process.stdin.on('end', () => process.exit(0))
setTimeout(() => process.exit(0), lifetimeMs).unref()
