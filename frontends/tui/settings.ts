// The start screen's memory: the last name and server, in $XDG_DATA_HOME/udsu/tui.json (mode 0600).
import * as path from 'node:path'
import { DEFAULT_SERVER, defaultProfileDir, NAME_HINT, NAME_PATTERN, Profile, type Settings } from '../../core'
import { parseServerList } from '../../protocol'

export const REMEMBERED_FILE = 'tui.json'

/** udsu's data folder, where profiles live too: $XDG_DATA_HOME/udsu or ~/.local/share/udsu. */
export function dataFolder(): Profile {
  return new Profile(path.dirname(defaultProfileDir('default')))
}

/** The remembered settings; a missing or unreadable file gives none, with the reason in `problem`. */
export function loadRemembered(folder: Profile = dataFolder()): { settings: Partial<Settings>; problem?: string } {
  try {
    const raw = folder.readJson<Record<string, unknown>>(REMEMBERED_FILE)
    const settings: Partial<Settings> = {}
    if (typeof raw?.name === 'string') settings.name = raw.name
    if (typeof raw?.server === 'string') settings.server = raw.server
    return { settings }
  } catch (error) {
    return { settings: {}, problem: (error as Error).message }
  }
}

/** Stores the accepted settings (atomically, 0600 in a 0700 folder), for the next start screen. */
export function saveRemembered(settings: Settings, folder: Profile = dataFolder()): void {
  folder.writeJson(REMEMBERED_FILE, { name: settings.name, server: settings.server })
}

/** Whether a client runs on this name's default profile right now (the README's second terminal, while the first runs). */
export function profileInUse(name: string): boolean {
  return new Profile(defaultProfileDir(name)).holder() !== undefined
}

/**
 * What the start screen shows first. A name from the config or --name wins over the remembered one;
 * the server too, unless it is only the built-in default (a flag and the default look the same here).
 * A remembered name whose profile is in use is not offered: that user is running in another terminal.
 */
export function prefill(
  given: Settings,
  remembered: Partial<Settings>,
  inUse: (name: string) => boolean = profileInUse,
): Settings {
  const rememberedName = remembered.name && !inUse(remembered.name) ? remembered.name : ''
  return {
    name: given.name || rememberedName,
    server:
      given.server && (given.server !== DEFAULT_SERVER || !remembered.server)
        ? given.server
        : (remembered.server ?? DEFAULT_SERVER),
  }
}

export interface SettingsProblems {
  name?: string
  server?: string
}

/** Checks what the user typed; each problem is a sentence to show under its field. */
export function validateSettings(settings: Settings): SettingsProblems {
  const problems: SettingsProblems = {}
  if (!settings.name) problems.name = 'a name is needed'
  else if (!NAME_PATTERN.test(settings.name)) problems.name = `the name ${NAME_HINT}`
  try {
    parseServerList(settings.server)
  } catch (error) {
    problems.server = (error as Error).message
  }
  return problems
}
