// The start screen: name and rendezvous server, prefilled, checked before the client goes on.
import * as blessed from 'blessed'
import type { Settings } from '../../core'
import { LineEditor } from './editor'
import { paint, type Theme } from './format'
import { displayWidth, safe } from './sanitize'
import { validateSettings, type SettingsProblems } from './settings'
import type { Key, Terminal } from './terminal'

const FIELDS = [
  { key: 'name', label: 'Your name', hint: '1-32 letters, digits, _ . -' },
  { key: 'server', label: 'Rendezvous server', hint: 'host:port, e.g. 127.0.0.1:7777' },
] as const

/** Asks for the settings; resolves with what the user accepted, or undefined when they quit (Esc, Ctrl+C). */
export function askSettings(
  terminal: Terminal,
  initial: Settings,
  theme: Theme,
  note?: string,
): Promise<Settings | undefined> {
  const editors = { name: new LineEditor(initial.name), server: new LineEditor(initial.server) }
  // Prefilled values are selected: typing a new name replaces the remembered one ("bob", not "alicebob").
  editors.name.selectAll()
  editors.server.selectAll()
  let focus = 0
  let problems: SettingsProblems = {}
  const box = blessed.box({ parent: terminal.screen, top: 0, left: 0, width: '100%', height: '100%', tags: true })

  const draw = () => {
    const width = Math.max(8, Math.min(40, terminal.width - 6))
    const lines = ['', `  {bold}udsu{/bold} — peer-to-peer chat, end-to-end encrypted`, '']
    let cursor = { row: 0, col: 0 }
    FIELDS.forEach((field, i) => {
      const view = editors[field.key].view(width)
      const pad = ' '.repeat(Math.max(0, width - displayWidth(view.text)))
      const shown = safe(view.text)
      lines.push(`  ${i === focus ? '{bold}' : ''}${field.label}${i === focus ? '{/bold}' : ''}`)
      if (i === focus) cursor = { row: lines.length, col: 3 + view.cursor }
      // The selection shows in reverse video, as in a browser's field. Not nested in {underline}: blessed's closing tag
      // of a nested flag restores only the outer one and leaves reverse on; {/} resets both.
      const drawn =
        i !== focus
          ? shown + pad
          : view.selected
            ? `{underline}{inverse}${shown}{/}{underline}${pad}{/underline}`
            : `{underline}${shown}${pad}{/underline}`
      lines.push(`  [${drawn}]`)
      const problem = problems[field.key]
      lines.push(problem ? `  ${paint(`✗ ${safe(problem)}`, 'red', theme)}` : `  ${paint(field.hint, 'gray', theme)}`)
      lines.push('')
    })
    lines.push('  Enter: start   Tab, ↑, ↓: next field   Esc or Ctrl+C: quit')
    if (note) lines.push('', `  ${safe(note)}`)
    box.setContent(lines.join('\n'))
    terminal.setCursor(cursor)
    terminal.render()
  }

  return new Promise((resolve) => {
    const finish = (result: Settings | undefined) => {
      terminal.screen.removeListener('resize', draw)
      box.destroy()
      terminal.setCursor(undefined)
      resolve(result)
    }
    terminal.onKey((key: Key) => {
      const editor = editors[FIELDS[focus].key]
      if (key.full === 'C-c' || key.full === 'escape') return finish(undefined)
      if (key.full === 'return' && !key.pasted) {
        const settings = { name: editors.name.text.trim(), server: editors.server.text.trim() }
        problems = validateSettings(settings)
        const bad = FIELDS.findIndex((f) => problems[f.key])
        if (bad < 0) return finish(settings)
        focus = bad
      } else if (key.full === 'tab' || key.full === 'down' || key.full === 'S-tab' || key.full === 'up') {
        focus = (focus + 1) % FIELDS.length
      } else editKey(editor, key)
      draw()
    })
    terminal.screen.on('resize', draw)
    draw()
  })
}

/** The editing keys both screens share; returns false when the key is not an editing key. */
export function editKey(editor: LineEditor, key: Key): boolean {
  switch (key.full) {
    case 'backspace':
      editor.backspace()
      return true
    case 'delete':
    case 'C-d':
      editor.delete()
      return true
    case 'left':
    case 'C-b':
      editor.left()
      return true
    case 'right':
    case 'C-f':
      editor.right()
      return true
    case 'home':
    case 'C-a':
      editor.home()
      return true
    case 'end':
    case 'C-e':
      editor.end()
      return true
    case 'C-u':
      editor.killToStart()
      return true
    case 'C-w':
      editor.killWord()
      return true
  }
  // Typed characters only: control keys and escape sequences never reach the text.
  if (key.ch && !key.ctrl && !key.meta && !/[\u0000-\u001f\u007f-\u009f]/.test(key.ch)) {
    editor.insert(key.ch)
    return true
  }
  return false
}
