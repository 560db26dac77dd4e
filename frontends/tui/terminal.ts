// The one blessed screen of the process: key dispatch with paste detection, coalesced renders, the cursor.
import * as blessed from 'blessed'
// Before any drawing: blessed must count emoji as two columns, as the terminal does.
import './widths'

/** A key as the screens see it: blessed's key, plus whether it is part of a bracketed paste. */
export interface Key {
  ch?: string
  name?: string
  full: string
  ctrl: boolean
  meta: boolean
  shift: boolean
  sequence?: string
  pasted: boolean
}

export type KeyHandler = (key: Key) => void

const PASTE_START = '\x1b[200~'
const PASTE_END = '\x1b[201~'

export class Terminal {
  readonly screen: blessed.Widgets.Screen
  private handler?: KeyHandler
  private pasting = false
  private renderQueued = false
  private cursor?: { row: number; col: number }
  private gone = false

  constructor() {
    this.screen = blessed.screen({
      smartCSR: true,
      fullUnicode: true,
      // CJK and emoji need UTF-8 anyway; blessed's guess from LANG would turn them into '?'.
      forceUnicode: true,
      autoPadding: false,
      title: 'udsu',
    })
    // Draw │ and · as UTF-8, not as the VT100 line-drawing set (ncurses does the same in a UTF-8 locale).
    ;(this.screen.program as unknown as { tput: { brokenACS: boolean } }).tput.brokenACS = true
    // Bracketed paste: the terminal marks a paste, so its newlines do not send line by line.
    this.screen.program.decset('2004')
    // blessed drops the paste markers as unknown keys; they are seen here on the raw input, in order.
    this.screen.program.input.on('keypress', (_ch: unknown, key: { sequence?: string } | undefined) => {
      if (key?.sequence === PASTE_START) this.pasting = true
      else if (key?.sequence === PASTE_END) this.pasting = false
    })
    this.screen.on('keypress', (ch: string | undefined, key: blessed.Widgets.Events.IKeyEventArg) => {
      this.handler?.({
        ch,
        name: key.name,
        full: key.full,
        ctrl: key.ctrl,
        meta: key.meta,
        shift: key.shift,
        sequence: key.sequence,
        pasted: this.pasting,
      })
    })
    this.screen.on('render', () => this.placeCursor())
  }

  get destroyed(): boolean {
    return this.gone
  }

  get width(): number {
    return this.screen.width as number
  }

  get height(): number {
    return this.screen.height as number
  }

  onKey(handler: KeyHandler): void {
    this.handler = handler
  }

  /** Redraws once after the current burst of events (a paste is hundreds of keypresses). */
  render(): void {
    if (this.renderQueued || this.gone) return
    this.renderQueued = true
    setImmediate(() => {
      this.renderQueued = false
      if (!this.gone) this.screen.render()
    })
  }

  /** Where the text cursor shows after each render; undefined hides it. */
  setCursor(position?: { row: number; col: number }): void {
    this.cursor = position
  }

  private placeCursor(): void {
    const program = this.screen.program
    if (!this.cursor) return void program.hideCursor()
    program.cup(this.cursor.row, this.cursor.col)
    program.showCursor()
  }

  /** Gives the terminal back: leaves the alternate screen, shows the cursor, turns paste marking off. */
  destroy(): void {
    if (this.gone) return
    this.gone = true
    this.screen.program.decrst('2004')
    this.screen.program.showCursor()
    this.screen.destroy()
  }
}
