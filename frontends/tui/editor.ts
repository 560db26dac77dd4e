// The input line as data: text, a cursor on grapheme boundaries, and the history of what was entered.
import { displayWidth, splitGraphemes } from './sanitize'

/** How a line looks in a field `width` columns wide: the part shown, and the cursor's column in it. */
export interface EditorView {
  text: string
  cursor: number
  /** The whole text is selected: the next typed character replaces it. */
  selected: boolean
}

/** Shown in place of a newline inside the one-line field (a pasted multi-line message). */
export const NEWLINE_MARK = '⏎'

export class LineEditor {
  text = ''
  /** Index into `text` (UTF-16 units), always on a grapheme boundary once a keystroke is complete. */
  cursor = 0
  private readonly history: string[] = []
  /** Position while walking the history with Up/Down; `history.length` means the draft. */
  private browsing = 0
  private draft = ''
  /** A prefilled value is selected, as browsers and most TUIs do: typing replaces it instead of appending to it. */
  private allSelected = false

  constructor(
    initial = '',
    private readonly historyLimit = 100,
  ) {
    this.set(initial)
  }

  set(text: string): void {
    this.text = text
    this.cursor = text.length
    this.allSelected = false
  }

  /** Selects the whole text (nothing when it is empty); any key then acts on the selection, or ends it. */
  selectAll(): void {
    this.allSelected = this.text.length > 0
  }

  get selected(): boolean {
    return this.allSelected
  }

  /** Removes the selected text, if any; true when it did. Editing keys start with it, as a selection is replaced. */
  private replaceSelection(): boolean {
    if (!this.allSelected) return false
    this.set('')
    return true
  }

  /** Ends the selection where a moving key puts the cursor, the text kept. */
  private collapse(): boolean {
    const was = this.allSelected
    this.allSelected = false
    return was
  }

  /** Inserts typed or pasted text at the cursor; a terminal may deliver an emoji as two halves, in order. */
  insert(text: string): void {
    this.replaceSelection()
    this.text = this.text.slice(0, this.cursor) + text + this.text.slice(this.cursor)
    this.cursor += text.length
  }

  backspace(): void {
    if (this.replaceSelection()) return
    const before = splitGraphemes(this.text.slice(0, this.cursor))
    const removed = before.pop() ?? ''
    this.text = before.join('') + this.text.slice(this.cursor)
    this.cursor -= removed.length
  }

  delete(): void {
    if (this.replaceSelection()) return
    const after = splitGraphemes(this.text.slice(this.cursor))
    after.shift()
    this.text = this.text.slice(0, this.cursor) + after.join('')
  }

  left(): void {
    if (this.collapse()) return this.home()
    this.cursor -= splitGraphemes(this.text.slice(0, this.cursor)).pop()?.length ?? 0
  }

  right(): void {
    if (this.collapse()) return this.end()
    this.cursor += splitGraphemes(this.text.slice(this.cursor))[0]?.length ?? 0
  }

  home(): void {
    this.allSelected = false
    this.cursor = 0
  }

  end(): void {
    this.allSelected = false
    this.cursor = this.text.length
  }

  /** Ctrl+U: deletes from the start of the line to the cursor. */
  killToStart(): void {
    if (this.replaceSelection()) return
    this.text = this.text.slice(this.cursor)
    this.cursor = 0
  }

  /** Ctrl+W: deletes the word before the cursor. */
  killWord(): void {
    if (this.replaceSelection()) return
    const before = this.text.slice(0, this.cursor).replace(/\S+\s*$|\s+$/u, '')
    this.text = before + this.text.slice(this.cursor)
    this.cursor = before.length
  }

  /** Takes the line for sending: remembers it in the history (not twice in a row) and empties the field. */
  submit(): string {
    const line = this.text
    if (line.trim() && this.history[this.history.length - 1] !== line) {
      this.history.push(line)
      if (this.history.length > this.historyLimit) this.history.shift()
    }
    this.browsing = this.history.length
    this.draft = ''
    this.set('')
    return line
  }

  /** Up: the previous entered line; the unsent draft is kept and comes back with Down. */
  previous(): void {
    if (this.browsing === 0) return
    if (this.browsing === this.history.length) this.draft = this.text
    this.browsing--
    this.set(this.history[this.browsing])
  }

  next(): void {
    if (this.browsing >= this.history.length) return
    this.browsing++
    this.set(this.browsing === this.history.length ? this.draft : this.history[this.browsing])
  }

  /** The visible slice for a field `width` columns wide, scrolled so the cursor stays in view. */
  view(width: number): EditorView {
    const shown = (s: string) => s.replace(/\n/g, NEWLINE_MARK)
    const room = Math.max(1, width - 1)
    const before = splitGraphemes(shown(this.text.slice(0, this.cursor)))
    let head = ''
    let used = 0
    for (let i = before.length - 1; i >= 0; i--) {
      const w = displayWidth(before[i])
      if (used + w > room) break
      head = before[i] + head
      used += w
    }
    let tail = ''
    let total = used
    for (const g of splitGraphemes(shown(this.text.slice(this.cursor)))) {
      const w = displayWidth(g)
      if (total + w > width) break
      tail += g
      total += w
    }
    return { text: head + tail, cursor: used, selected: this.allSelected }
  }
}
