/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The renderer: plain DOM, no framework, no module loader. It talks to the core only through the bridge (a WebSocket to
// the web frontend, or Electron's preload), and shows peer text only through textContent: nothing a peer sends is HTML.
// This file is a script, not a module (a browser loads it as is): it imports only types, with import('…') type expressions.

;(() => {
  // Type aliases live inside the function: a script's top-level names would be global to the whole program.
  type CoreEvent = import('../bridge').CoreEvent
  type CoreRequest = import('../bridge').CoreRequest
  type RequestResults = import('../bridge').RequestResults
  type RequestEnvelope = import('../bridge').RequestEnvelope
  type DesktopBridge = import('../bridge').DesktopBridge
  type MessageView = import('../bridge').MessageView
  type ContactView = import('../bridge').ContactView
  type StartProblems = import('../bridge').StartProblems
  type SearchResult = import('../bridge').SearchResult

  /** The two ways to the core: Electron's preload, or the web frontend's WebSocket (the secret is in this page's path). */
  interface Channel {
    send(envelope: RequestEnvelope): void
    onEvent(listener: (event: CoreEvent) => void): void
    onClosed(listener: () => void): void
  }

  const desktop = (window as unknown as { udsuDesktop?: DesktopBridge }).udsuDesktop

  function openChannel(): Channel {
    if (desktop) return { send: (e) => desktop.send(e), onEvent: (l) => desktop.onEvent(l), onClosed: () => undefined }
    const socket = new WebSocket(
      `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${location.pathname}bridge`,
    )
    const queued: string[] = []
    socket.addEventListener('open', () => queued.splice(0).forEach((text) => socket.send(text)))
    return {
      send(envelope) {
        const text = JSON.stringify(envelope)
        if (socket.readyState === WebSocket.OPEN) socket.send(text)
        else queued.push(text)
      },
      onEvent(listener) {
        socket.addEventListener('message', (message) => {
          if (typeof message.data === 'string') listener(JSON.parse(message.data) as CoreEvent)
        })
      },
      onClosed(listener) {
        socket.addEventListener('close', listener)
      },
    }
  }

  const byId = <T extends HTMLElement>(id: string) => {
    const element = document.getElementById(id)
    if (!element) throw new Error(`the page has no #${id}`)
    return element as T
  }
  /** Makes an element with text content only: the one way peer text reaches the page. */
  function el<K extends keyof HTMLElementTagNameMap>(
    tag: K,
    className?: string,
    text?: string,
  ): HTMLElementTagNameMap[K] {
    const element = document.createElement(tag)
    if (className) element.className = className
    if (text !== undefined) element.textContent = text
    return element
  }

  const ui = {
    start: byId<HTMLElement>('start'),
    startForm: byId<HTMLFormElement>('start-form'),
    startName: byId<HTMLInputElement>('start-name'),
    startServer: byId<HTMLInputElement>('start-server'),
    startButton: byId<HTMLButtonElement>('start-button'),
    startProgress: byId<HTMLElement>('start-progress'),
    chat: byId<HTMLElement>('chat'),
    me: byId<HTMLElement>('me'),
    search: byId<HTMLInputElement>('search'),
    contacts: byId<HTMLUListElement>('contacts'),
    openForm: byId<HTMLFormElement>('open-form'),
    openPeer: byId<HTMLInputElement>('open-peer'),
    importButton: byId<HTMLButtonElement>('import'),
    importFile: byId<HTMLInputElement>('import-file'),
    title: byId<HTMLElement>('title'),
    safety: byId<HTMLButtonElement>('safety'),
    exportButton: byId<HTMLButtonElement>('export'),
    alerts: byId<HTMLElement>('alerts'),
    safetyPanel: byId<HTMLElement>('safety-panel'),
    safetyPeer: byId<HTMLElement>('safety-peer'),
    safetyNumber: byId<HTMLElement>('safety-number'),
    safetyClose: byId<HTMLButtonElement>('safety-close'),
    resultsPanel: byId<HTMLElement>('results-panel'),
    resultsTitle: byId<HTMLElement>('results-title'),
    results: byId<HTMLUListElement>('results'),
    resultsClose: byId<HTMLButtonElement>('results-close'),
    messages: byId<HTMLElement>('messages'),
    composer: byId<HTMLFormElement>('composer'),
    message: byId<HTMLTextAreaElement>('message'),
    send: byId<HTMLButtonElement>('send'),
    status: byId<HTMLElement>('status'),
  }

  // ── state ──
  let me = ''
  let contacts: ContactView[] = []
  let current: string | undefined
  /** The open conversation's messages, oldest first, and whether older ones can be loaded. */
  let shown: MessageView[] = []
  let more = false
  let loadingOlder = false
  let server: { online: boolean; server: string; current?: string; reason?: string } | undefined
  const paths = new Map<string, string>()
  /** Peers whose key changed and is not accepted yet → the warning's text and the new key's fingerprint it names. */
  const keyChanges = new Map<string, { text: string; fingerprint?: string }>()
  const notices: Array<{ peer?: string; text: string }> = []

  const channel = openChannel()
  let nextId = 1
  const waiting = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>()

  function request<K extends CoreRequest['type']>(body: Extract<CoreRequest, { type: K }>): Promise<RequestResults[K]> {
    const id = nextId++
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve: resolve as (value: unknown) => void, reject })
      channel.send({ id, request: body })
    })
  }

  channel.onEvent(onEvent)
  channel.onClosed(() => {
    ui.status.textContent = 'udsu stopped: the connection to the client is closed.'
    ui.message.disabled = ui.send.disabled = ui.startButton.disabled = true
  })

  function onEvent(event: CoreEvent): void {
    switch (event.type) {
      case 'reply': {
        const pending = waiting.get(event.id)
        waiting.delete(event.id)
        if (!pending) return
        return event.ok ? pending.resolve(event.result) : pending.reject(new Error(event.error))
      }
      case 'hello':
        ui.startName.value = event.prefill.name
        ui.startServer.value = event.prefill.server
        if (event.me) me = event.me.name
        return showPhase(event.phase, event.problems, event.final)
      case 'phase':
        return showPhase(event.phase, event.problems, event.final)
      case 'ready':
        me = event.me.name
        ui.me.textContent = `You are ${me}`
        ui.me.title = `Your fingerprint: ${event.me.fingerprint}`
        return
      case 'server':
        server = { online: event.online, server: event.server, current: event.current, reason: event.reason }
        return renderStatus()
      case 'contacts': {
        contacts = event.contacts
        // The tab's (or window's) title counts what is unread, so it shows from elsewhere too.
        const unread = contacts.reduce((sum, c) => sum + c.unread, 0)
        document.title = unread ? `(${unread}) udsu` : 'udsu'
        return renderContacts()
      }
      case 'path':
        if (event.path) paths.set(event.peer, event.path)
        else paths.delete(event.peer)
        return renderStatus()
      case 'message':
        return onMessage(event.message)
      case 'messageState': {
        const message = shown.find((m) => m.id === event.id && m.out)
        if (!message) return
        message.state = event.state
        message.reason = event.reason
        const state = ui.messages.querySelector<HTMLElement>(`[data-id="${CSS.escape(event.id)}"] .state`)
        if (state) renderState(state, message)
        return
      }
      case 'problem':
        if (event.keyChanged && event.peer) {
          keyChanges.set(event.peer, { text: event.message, fingerprint: event.fingerprint })
          renderAlerts()
        } else notice(event.message, event.peer)
        return
      case 'keyAccepted':
        keyChanges.delete(event.peer)
        renderAlerts()
        return notice(`You now trust the new key of ${event.peer}.`, event.peer)
    }
  }

  // ── start window ──

  function showPhase(phase: 'start' | 'starting' | 'chat', problems?: StartProblems, final = false): void {
    ui.start.hidden = phase === 'chat'
    ui.chat.hidden = phase !== 'chat'
    byId('start-name-problem').textContent = problems?.name ?? ''
    byId('start-server-problem').textContent = problems?.server ?? ''
    byId('start-form-problem').textContent = problems?.form ?? ''
    ui.startName.setAttribute('aria-invalid', String(Boolean(problems?.name)))
    ui.startServer.setAttribute('aria-invalid', String(Boolean(problems?.server)))
    ui.startButton.disabled = phase !== 'start' || final
    ui.startName.readOnly = ui.startServer.readOnly = final
    ui.startProgress.textContent = phase === 'starting' ? 'Starting…' : ''
    if (phase === 'start') (problems?.server && !problems.name ? ui.startServer : ui.startName).focus()
    if (phase === 'chat') {
      ui.me.textContent = `You are ${me}`
      ui.search.focus()
      renderStatus()
    }
  }

  ui.startForm.addEventListener('submit', (e) => {
    e.preventDefault()
    ui.startButton.disabled = true
    ui.startProgress.textContent = 'Checking…'
    // Asked on a user's click, as browsers require; the answer is remembered by the browser.
    if (!desktop && 'Notification' in window && Notification.permission === 'default')
      void Notification.requestPermission().catch(() => undefined)
    request({ type: 'start', name: ui.startName.value, server: ui.startServer.value })
      .catch((error: Error) => (byId('start-form-problem').textContent = error.message))
      .finally(() => {
        if (!ui.start.hidden && ui.startProgress.textContent === 'Checking…') {
          ui.startProgress.textContent = ''
          ui.startButton.disabled = false
        }
      })
  })

  // ── contacts ──

  function contactState(contact: ContactView): string {
    const parts = [contact.online ? 'online' : 'offline']
    if (contact.path) parts.push(contact.path)
    if (contact.unread) parts.push(`${contact.unread} unread`)
    return parts.join(', ')
  }

  function renderContacts(): void {
    const focused =
      document.activeElement instanceof HTMLElement && ui.contacts.contains(document.activeElement)
        ? document.activeElement.dataset.peer
        : undefined
    ui.contacts.replaceChildren(
      ...contacts.map((contact) => {
        const item = el('li', contact.online ? 'online' : 'offline')
        item.dataset.peer = contact.name
        item.setAttribute('aria-label', `${contact.name}, ${contactState(contact)}`)
        item.setAttribute('aria-current', String(contact.name === current))
        // One tab stop for the list (the open conversation, or the first); arrows move within it.
        item.tabIndex = contact.name === (current ?? contacts[0]?.name) ? 0 : -1
        item.append(el('span', 'dot'), el('span', 'name', contact.name))
        if (contact.path) item.append(el('span', 'path', contact.path))
        if (contact.unread) item.append(el('span', 'badge', String(contact.unread)))
        return item
      }),
    )
    if (focused) ui.contacts.querySelector<HTMLElement>(`[data-peer="${CSS.escape(focused)}"]`)?.focus()
  }

  ui.contacts.addEventListener('click', (e) => {
    const item = (e.target as HTMLElement).closest<HTMLElement>('li[data-peer]')
    if (item?.dataset.peer) void openConversation(item.dataset.peer)
  })
  ui.contacts.addEventListener('keydown', (e) => {
    const item = (e.target as HTMLElement).closest<HTMLElement>('li[data-peer]')
    if (!item) return
    const items = [...ui.contacts.querySelectorAll<HTMLElement>('li[data-peer]')]
    const at = items.indexOf(item)
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault()
      items[(at + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length]?.focus()
    } else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault()
      if (item.dataset.peer) void openConversation(item.dataset.peer).then(() => ui.message.focus())
    }
  })

  ui.openForm.addEventListener('submit', (e) => {
    e.preventDefault()
    const peer = ui.openPeer.value.trim()
    if (!peer) return
    ui.openPeer.value = ''
    openConversation(peer).then(
      () => ui.message.focus(),
      (error: Error) => notice(error.message),
    )
  })

  // ── a conversation ──

  async function openConversation(peer: string): Promise<void> {
    current = peer
    ui.title.textContent = peer
    ui.message.disabled = ui.send.disabled = ui.safety.disabled = ui.exportButton.disabled = false
    ui.safetyPanel.hidden = true
    renderContacts()
    renderAlerts()
    renderStatus()
    const page = await request({ type: 'open', peer })
    if (current !== peer) return
    shown = page.messages
    more = page.more
    renderMessages()
    ui.messages.scrollTop = ui.messages.scrollHeight
    fillView()
  }

  function onMessage(message: MessageView): void {
    if (message.peer === current) {
      const known = shown.findIndex((m) => m.id === message.id && m.from === message.from)
      if (known >= 0) return
      const atBottom = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 40
      shown.push(message)
      renderMessages()
      if (atBottom || message.out) ui.messages.scrollTop = ui.messages.scrollHeight
    }
    if (!message.out && (message.peer !== current || document.hidden)) notify(message)
  }

  function notify(message: MessageView): void {
    // The title and body are text: a notification never renders HTML.
    const body = message.text.length > 140 ? `${message.text.slice(0, 140)}…` : message.text
    if (desktop) return desktop.notify(message.from, body)
    if ('Notification' in window && Notification.permission === 'granted') new Notification(message.from, { body })
  }

  const dayFormat = new Intl.DateTimeFormat(undefined, {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    year: 'numeric',
  })
  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' })

  function renderMessages(): void {
    const nodes: HTMLElement[] = []
    if (more) nodes.push(el('p', 'notice', 'Scroll up for older messages'))
    let day = ''
    for (const message of shown) {
      const date = new Date(message.ts)
      const thisDay = dayFormat.format(date)
      if (thisDay !== day) {
        day = thisDay
        const separator = el('p', 'day', thisDay)
        separator.setAttribute('role', 'separator')
        separator.setAttribute('aria-label', thisDay)
        nodes.push(separator)
      }
      nodes.push(renderMessage(message, date))
    }
    for (const { text } of notices.filter((n) => n.peer === current)) nodes.push(el('p', 'notice', text))
    ui.messages.replaceChildren(...nodes)
  }

  function renderMessage(message: MessageView, date: Date): HTMLElement {
    const item = el('article', `message${message.out ? ' own' : ''}`)
    item.dataset.id = message.id
    item.setAttribute('aria-label', `${message.out ? 'You' : message.from}, ${timeFormat.format(date)}`)
    item.append(el('p', 'text', message.text))
    const meta = el('p', 'meta')
    const time = el('time', undefined, timeFormat.format(date))
    time.dateTime = date.toISOString()
    meta.append(time)
    if (message.out) {
      const state = el('span', 'state')
      renderState(state, message)
      meta.append(state)
    }
    item.append(meta)
    return item
  }

  /** The state is text (pending, sent, delivered, failed): what screen readers and tests read. */
  function renderState(element: HTMLElement, message: MessageView): void {
    const state = message.state ?? 'pending'
    element.className = `state ${state}`
    element.textContent = state
    element.title = message.reason ? `${state}: ${message.reason}` : state
  }

  ui.messages.addEventListener('scroll', () => {
    if (ui.messages.scrollTop <= 40) loadOlder()
  })

  /** Loads the page before the oldest message shown, keeping the view where it was; again while nothing overflows. */
  function loadOlder(): void {
    if (!more || loadingOlder || !current || !shown.length) return
    loadingOlder = true
    const peer = current
    const height = ui.messages.scrollHeight
    request({ type: 'history', peer, before: shown[0].id })
      .then((page) => {
        if (current !== peer) return
        const ids = new Set(shown.map((m) => m.id))
        shown = [...page.messages.filter((m) => !ids.has(m.id)), ...shown]
        more = page.more
        renderMessages()
        // Keep what the user was reading where it was.
        ui.messages.scrollTop += ui.messages.scrollHeight - height
      })
      .catch((error: Error) => notice(`could not load older messages: ${error.message}`, peer))
      .finally(() => {
        loadingOlder = false
        fillView()
      })
  }

  /** A first page that does not fill the view cannot be scrolled up: load older ones until it does. */
  function fillView(): void {
    if (ui.messages.scrollHeight <= ui.messages.clientHeight) loadOlder()
  }

  function notice(text: string, peer?: string): void {
    notices.push({ peer: peer ?? current, text })
    if (notices.length > 200) notices.shift()
    if ((peer ?? current) === current) renderMessages()
  }

  // ── composer ──

  ui.message.addEventListener('keydown', (e) => {
    // Enter sends; Shift+Enter is the textarea's own new line; a pasted text keeps its line breaks.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault()
      ui.composer.requestSubmit()
    }
  })

  ui.composer.addEventListener('submit', (e) => {
    e.preventDefault()
    const text = ui.message.value
    const to = current
    if (!to || !text.trim()) return
    ui.message.value = ''
    request({ type: 'send', to, text }).then(onMessage, (error: Error) => {
      notice(`Not sent: ${error.message}`, to)
      if (!ui.message.value) ui.message.value = text
    })
  })

  // ── status line ──

  function renderStatus(): void {
    ui.status.replaceChildren()
    if (server) {
      const state = el(
        'span',
        server.online ? 'online' : 'offline',
        `Server ${server.current ?? server.server} ${server.online ? 'online' : `offline${server.reason ? ` (${server.reason})` : ''}`}`,
      )
      ui.status.append(state)
    }
    if (current)
      ui.status.append(
        el(
          'span',
          undefined,
          ` · ${current}: ${paths.get(current) ?? contacts.find((c) => c.name === current)?.path ?? 'no path yet'}`,
        ),
      )
  }

  // ── safety number and key changes ──

  ui.safety.addEventListener('click', () => {
    const peer = current
    if (!peer) return
    request({ type: 'safetyNumber', peer }).then(
      (number) => {
        ui.safetyPeer.textContent = peer
        ui.safetyNumber.textContent = number ?? `No key is known for ${peer} yet: send a message first.`
        ui.safetyPanel.hidden = false
        ui.safetyClose.focus()
      },
      (error: Error) => notice(error.message, peer),
    )
  })
  ui.safetyClose.addEventListener('click', () => {
    ui.safetyPanel.hidden = true
    ui.safety.focus()
  })

  function renderAlerts(): void {
    const warning = current ? keyChanges.get(current) : undefined
    ui.alerts.replaceChildren()
    for (const [peer, { text, fingerprint }] of keyChanges) {
      if (peer !== current && warning) continue
      const alert = el('div', 'alert')
      alert.setAttribute('role', 'alert')
      alert.append(el('p', undefined, `Warning: ${text.replace(/\. Messages with .*$/, '.')}`))
      alert.append(
        el(
          'p',
          undefined,
          `Messages with ${peer} are blocked until you compare the safety number with ${peer} and accept the new key.`,
        ),
      )
      // Accepting pins exactly the key this warning names; without a fingerprint to name, there is nothing safe to accept.
      if (fingerprint) {
        const accept = el('button', undefined, 'Accept new key')
        accept.type = 'button'
        accept.setAttribute('aria-label', `Accept new key of ${peer}`)
        accept.addEventListener('click', () => {
          request({ type: 'acceptKey', peer, fingerprint }).catch((error: Error) => notice(error.message, peer))
        })
        alert.append(accept)
      }
      ui.alerts.append(alert)
    }
  }

  // ── export and import ──

  ui.exportButton.addEventListener('click', () => {
    if (!current) return
    request({ type: 'export', peer: current }).then(
      async (file) => {
        if (desktop) return void (await desktop.saveFile(file.fileName, file.text))
        // A download from a blob of our own text: nothing is fetched, nothing is navigated to.
        const url = URL.createObjectURL(new Blob([file.text], { type: 'application/json' }))
        const link = el('a')
        link.href = url
        link.download = file.fileName
        link.click()
        setTimeout(() => URL.revokeObjectURL(url), 10_000)
      },
      (error: Error) => notice(`Export failed: ${error.message}`),
    )
  })

  ui.importButton.addEventListener('click', () => {
    if (!desktop) return ui.importFile.click()
    desktop.openFile().then(
      (text) => text !== undefined && importText(text),
      (error: Error) => notice(`Import failed: ${error.message}`),
    )
  })
  ui.importFile.addEventListener('change', () => {
    const file = ui.importFile.files?.[0]
    ui.importFile.value = ''
    file?.text().then(
      (text) => importText(text, file.name),
      (error: Error) => notice(`Import failed: ${error.message}`),
    )
  })

  function importText(text: string, file?: string): void {
    request({ type: 'import', text, ...(file === undefined ? {} : { file }) }).then(
      ({ imported, skipped, refused }) => {
        const also = [skipped ? `${skipped} already there` : '', refused ? `${refused} refused` : '']
          .filter(Boolean)
          .join(', ')
        notice(`Imported ${imported} message${imported === 1 ? '' : 's'}${also ? ` (${also})` : ''}.`)
        // Imported messages are in history now: the open conversation's page is read again from it.
        if (current) void openConversation(current)
      },
      (error: Error) => notice(`Import failed: ${error.message}`),
    )
  }

  // ── search ──

  ui.search.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      ui.search.value = ''
      ui.resultsPanel.hidden = true
      return
    }
    if (e.key !== 'Enter') return
    e.preventDefault()
    const query = ui.search.value.trim()
    if (!query) return
    request({ type: 'search', query }).then(showResults, (error: Error) => notice(`Search failed: ${error.message}`))
  })

  function showResults(results: SearchResult[]): void {
    ui.resultsTitle.textContent = results.length ? `${results.length} found` : 'Nothing found'
    ui.results.replaceChildren(
      ...results.map(({ message, matches }) => {
        const item = el('li')
        item.append(
          el('strong', undefined, `${message.out ? 'You' : message.from} → ${message.out ? message.peer : 'you'}: `),
        )
        // Matches are marked by building text nodes around <mark> elements, never by writing HTML.
        let at = 0
        for (const [start, end] of matches) {
          item.append(
            document.createTextNode(message.text.slice(at, start)),
            el('mark', undefined, message.text.slice(start, end)),
          )
          at = end
        }
        item.append(document.createTextNode(message.text.slice(at)))
        return item
      }),
    )
    ui.resultsPanel.hidden = false
  }
  ui.resultsClose.addEventListener('click', () => {
    ui.resultsPanel.hidden = true
    ui.search.focus()
  })

  // ── keyboard ──

  document.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 'f' && !ui.chat.hidden) {
      e.preventDefault()
      ui.search.focus()
    } else if (e.altKey && (e.key === 'ArrowDown' || e.key === 'ArrowUp') && contacts.length) {
      // Alt+↑/↓: the previous or next conversation, from anywhere.
      e.preventDefault()
      const at = contacts.findIndex((c) => c.name === current)
      const next =
        contacts[(at + (e.key === 'ArrowDown' ? 1 : contacts.length - 1) + contacts.length) % contacts.length]
      void openConversation(next.name)
    } else if (e.key === 'Escape') {
      ui.safetyPanel.hidden = true
      ui.resultsPanel.hidden = true
    }
  })
})()
