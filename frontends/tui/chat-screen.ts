// The chat screen's widgets: header, contact list, conversation, status bar and input line, drawn from the model.
import * as blessed from 'blessed'
import { LineEditor } from './editor'
import { formatContact, formatConversation, formatStatus, type Theme } from './format'
import type { ChatModel } from './model'
import { displayWidth, fit, plainLine } from './sanitize'
import type { Terminal } from './terminal'

/** Under this many columns the contact list is hidden; the header lists unread conversations instead. */
export const NARROW_COLUMNS = 60

export class ChatView {
  readonly editor = new LineEditor()
  private readonly header: blessed.Widgets.BoxElement
  private readonly contacts: blessed.Widgets.BoxElement
  private readonly separator: blessed.Widgets.BoxElement
  private readonly conversation: blessed.Widgets.BoxElement
  private readonly status: blessed.Widgets.BoxElement
  private readonly input: blessed.Widgets.BoxElement
  /** Keeps the view at the newest line until the user scrolls up. */
  private following = true
  private shownConversation?: string
  /** Set before older lines are put on top: the distance from the old top to the end, to show the page just above it. */
  private prependAnchor?: number
  private drawQueued = false

  constructor(
    private readonly terminal: Terminal,
    private readonly model: ChatModel,
    private readonly theme: Theme,
  ) {
    const screen = terminal.screen
    const bar = theme.colour ? { fg: 'white', bg: 'blue' } : { inverse: true }
    this.header = blessed.box({ parent: screen, top: 0, left: 0, height: 1, tags: true, style: bar })
    this.contacts = blessed.box({ parent: screen, top: 1, left: 0, tags: true, mouse: true })
    this.separator = blessed.box({
      parent: screen,
      top: 1,
      width: 1,
      ch: '│',
      style: theme.colour ? { fg: 'gray' } : {},
    })
    this.conversation = blessed.box({
      parent: screen,
      top: 1,
      tags: true,
      scrollable: true,
      alwaysScroll: true,
      mouse: true,
      wrap: true,
      scrollbar: { ch: ' ', style: { inverse: true } },
    })
    this.status = blessed.box({ parent: screen, left: 0, height: 1, tags: true, style: bar })
    this.input = blessed.box({ parent: screen, left: 0, height: 1, tags: false })
    // Clicking a contact opens its conversation.
    this.contacts.on('click', (mouse: blessed.Widgets.Events.IMouseEventArg) => {
      const row = mouse.y - (this.contacts.atop as number)
      this.model.select(row + 1)
    })
    this.conversation.on('scroll', () => {
      this.following = this.atBottom()
    })
    screen.on('resize', () => this.draw())
  }

  scrollPage(direction: 1 | -1): void {
    const page = Math.max(1, (this.conversation.height as number) - 1)
    this.conversation.scroll(direction * page)
    this.following = this.atBottom()
    this.draw()
  }

  /** Back to the newest line (e.g. to show search results just added). */
  follow(): void {
    this.following = true
    this.requestDraw()
  }

  atTop(): boolean {
    return (
      this.conversation.getScroll() === 0 ||
      (this.conversation.getScrollHeight() as number) <= (this.conversation.height as number)
    )
  }

  /** Older lines are about to go on top (PgUp past the top): the next draw shows the page that ends where the view began. */
  keepPlaceOnPrepend(): void {
    this.prependAnchor = this.conversation.getScrollHeight() - this.conversation.getScroll()
  }

  private atBottom(): boolean {
    const box = this.conversation
    return box.getScroll() >= box.getScrollHeight() - (box.height as number) || box.getScrollPerc() >= 100
  }

  /** Draws once after the current burst of changes. */
  requestDraw(): void {
    if (this.drawQueued) return
    this.drawQueued = true
    setImmediate(() => {
      this.drawQueued = false
      this.draw()
    })
  }

  /** Lays out for the current size and redraws everything from the model. */
  draw(): void {
    if (this.terminal.destroyed) return
    const { width, height } = this.terminal
    const narrow = width < NARROW_COLUMNS
    const listWidth = narrow ? 0 : Math.min(24, Math.max(14, Math.floor(width * 0.22)))
    const bodyHeight = Math.max(1, height - 3)
    const model = this.model

    this.contacts.hidden = narrow
    this.separator.hidden = narrow
    place(this.contacts, 1, 0, Math.max(1, listWidth), bodyHeight)
    place(this.separator, 1, listWidth, 1, bodyHeight)
    const convLeft = narrow ? 0 : listWidth + 2
    place(this.conversation, 1, convLeft, Math.max(1, width - convLeft), bodyHeight)
    place(this.status, Math.max(1, height - 2), 0, width, 1)
    place(this.input, Math.max(2, height - 1), 0, width, 1)

    const list = model.contactList()
    this.contacts.setContent(
      list.length
        ? list.map((c, i) => formatContact(c, i + 1, c.name === model.current, listWidth, this.theme)).join('\n')
        : fit('no one online yet', listWidth),
    )

    const current = model.current
    const title = current === undefined ? `udsu · ${model.me}` : `${model.me} → ${current}`
    let extra = narrow
      ? model
          .unreadElsewhere()
          .map((c) => `${c.name} (${c.unread})`)
          .join(' ')
      : ''
    extra = extra ? ` · unread: ${extra}` : ''
    const more = this.following ? '' : ' · ↓ PgDn for newer'
    this.header.setContent(blessed.escape(fit(plainLine(` ${title}${extra}${more}`), width)))

    if (this.shownConversation !== current) {
      this.shownConversation = current
      this.following = true
    }
    const lines = formatConversation(model.entries(current), this.theme, (id) => model.delivery(id))
    if (current === undefined) lines.unshift(...this.welcome())
    this.conversation.setContent(lines.join('\n'))
    if (this.prependAnchor !== undefined && this.shownConversation === current) {
      const page = Math.max(1, (this.conversation.height as number) - 1)
      this.conversation.setScroll(Math.max(0, this.conversation.getScrollHeight() - this.prependAnchor - page))
      this.prependAnchor = undefined
      this.following = false
    } else if (this.following) this.conversation.setScrollPerc(100)

    this.status.setContent(
      formatStatus(model.status, current === undefined ? undefined : model.contact(current), width),
    )

    const prompt = current === undefined ? '> ' : `${fit(plainLine(current), 16)}> `
    const promptWidth = displayWidth(prompt)
    const view = this.editor.view(Math.max(1, width - promptWidth - 1))
    this.input.setContent(prompt + view.text)
    this.terminal.setCursor({ row: Math.max(2, height - 1), col: promptWidth + view.cursor })
    this.terminal.render()
  }

  private welcome(): string[] {
    return [
      `{bold}Welcome, ${blessed.escape(plainLine(this.model.me))}.{/bold}`,
      '',
      'Pick a conversation with Tab or Alt+1..9, or type /open NAME.',
      '/msg NAME TEXT sends a message, /help lists every command, Ctrl+C or /quit leaves.',
      '',
    ]
  }
}

function place(element: blessed.Widgets.BoxElement, top: number, left: number, width: number, height: number): void {
  element.top = top
  element.left = left
  element.width = width
  element.height = height
}
