// The profile directory: one per user on a machine, holding keys and state. Files are private to the user.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

export class Profile {
  private location?: string

  /** The directory may be given later with `open`: it depends on the user name, known once `configure` has run. */
  constructor(dir?: string) {
    this.location = dir
  }

  get dir(): string {
    if (!this.location) throw new Error('the profile is not open yet: plugins use it from the init hook on')
    return this.location
  }

  open(dir: string): void {
    this.location = dir
  }

  /** Creates the directory (mode 0700) if it is missing. */
  ensure(): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 })
  }

  /**
   * Makes an existing profile private: the directory 0700 and every file in it 0600 (an older version, a copy or an
   * unpacked archive may have left them readable). Each file is changed through a descriptor opened without following
   * links, so a symbolic link placed in the profile never gets its target's mode changed.
   */
  tighten(): void {
    if ((fs.statSync(this.dir).mode & 0o077) !== 0) fs.chmodSync(this.dir, 0o700)
    for (const entry of fs.readdirSync(this.dir, { withFileTypes: true })) {
      if (!entry.isFile()) continue
      let fd: number
      try {
        fd = fs.openSync(
          this.path(entry.name),
          fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK,
        )
      } catch {
        continue // gone, or replaced by a link since it was listed
      }
      try {
        const stat = fs.fstatSync(fd)
        if (stat.isFile() && (stat.mode & 0o077) !== 0) fs.fchmodSync(fd, 0o600)
      } finally {
        fs.closeSync(fd)
      }
    }
  }

  /** Claims the profile for this process: two clients on one profile would share a key and fight over the name. */
  lock(): void {
    this.ensure()
    this.tighten()
    const file = this.path('lock')
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 })
        return
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
        const holder = Number(fs.readFileSync(file, 'utf8'))
        if (holder !== process.pid && isAlive(holder)) {
          throw new Error(
            `the profile ${this.dir} is in use by udsu process ${holder}; choose another --name or --profile`,
          )
        }
        fs.rmSync(file, { force: true }) // left by a process that died
      }
    }
  }

  /** The live process that holds this profile's lock, if any: a client is running on it right now. */
  holder(): number | undefined {
    let text: string
    try {
      text = fs.readFileSync(this.path('lock'), 'utf8')
    } catch {
      return undefined
    }
    const pid = Number(text)
    return isAlive(pid) ? pid : undefined
  }

  unlock(): void {
    const file = this.path('lock')
    try {
      if (Number(fs.readFileSync(file, 'utf8')) === process.pid) fs.rmSync(file)
    } catch {
      // Already gone.
    }
  }

  path(name: string): string {
    return path.join(this.dir, name)
  }

  /** Reads a JSON file; missing gives undefined, unreadable JSON throws an error naming the file. */
  readJson<T>(name: string): T | undefined {
    const file = this.path(name)
    let text: string
    try {
      text = fs.readFileSync(file, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw error
    }
    try {
      return JSON.parse(text) as T
    } catch (error) {
      throw new Error(`${file} is not valid JSON (${(error as Error).message}); fix or remove it`)
    }
  }

  /** Writes a file of the profile atomically, mode 0600 (see writeFileAtomic). */
  writeFile(name: string, data: string | Uint8Array): void {
    this.ensure()
    writeFileAtomic(this.path(name), data)
  }

  writeJson(name: string, value: unknown): void {
    this.writeFile(name, JSON.stringify(value, null, 2) + '\n')
  }
}

/** Writes through a temporary file, fsync and rename, mode 0600: a crash leaves the old file or the new one, never half of one. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const temp = `${file}.${process.pid}.${Date.now()}.tmp`
  const fd = fs.openSync(temp, 'wx', 0o600)
  try {
    fs.writeFileSync(fd, data)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  try {
    fs.renameSync(temp, file)
  } catch (error) {
    fs.rmSync(temp, { force: true })
    throw error
  }
}

/** Where profiles live by default: $XDG_DATA_HOME/udsu/NAME, else ~/.local/share/udsu/NAME. */
export function defaultProfileDir(name: string): string {
  const base = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share')
  return path.join(base, 'udsu', name || 'default')
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
