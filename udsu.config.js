// udsu's configuration. Every key is optional; `udsu --help` lists the command-line flags that override these.
module.exports = {
  // Your user name; pass --name to choose one per terminal.
  // name: 'alice',

  // The rendezvous server. When it is on this machine and none answers, the client starts one itself.
  server: '127.0.0.1:7777',

  // tui: the terminal UI; headless: JSON lines on stdin/stdout, for scripts and bots (or --frontend).
  frontend: 'tui',

  // The plugins, in order; each is a built-in short name, a package name or a path, with its options.
  plugins: [
    { resolve: 'udp', options: { port: 0 } },
    { resolve: 'hole-punch', options: { keepaliveMs: 15000, embeddedServer: true } },
    // Starts a server inside this client when the configured one is on this machine and none answers.
    { resolve: 'embedded-server', options: {} },
    { resolve: 'rsa', options: { bits: 3072 } },
    // Exactly-once, in-order delivery with receipts and an outbox in the profile (see plugins/reliable/README.md).
    { resolve: 'reliable', options: {} },
    // Every conversation in SQLite in the profile, searchable, exportable (see plugins/history/README.md).
    { resolve: 'history', options: {} },
  ],

  log: { level: 'info' },
}
