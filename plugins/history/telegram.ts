// Maps a Telegram Desktop export of one personal chat (result.json, "Export chat history" → JSON) to history messages.
// The chat partner becomes `peer`, everyone else the owner. Formatting is flattened to text, media become a placeholder
// line ([photo], [voice message, 0:05]) above the caption, and every message udsu cannot keep is refused with a reason.
import type { StoredMessage } from '../../core'
import type { Located } from './import'

/** The parts of Telegram's export this reads; see https://core.telegram.org/import-export and an export's result.json. */
interface TelegramChat {
  name?: string
  type: string
  id?: number
  messages: unknown[]
}

type TextPart = string | { type?: string; text?: string; href?: string }

interface TelegramMessage {
  id: number
  type: string
  date?: string
  date_unixtime?: string
  edited?: string
  edited_unixtime?: string
  from?: string | null
  from_id?: string
  actor?: string | null
  actor_id?: string
  action?: string
  text?: string | TextPart[]
  forwarded_from?: string | null
  reply_to_message_id?: number
  photo?: string
  file?: string
  file_name?: string
  media_type?: string
  sticker_emoji?: string
  duration_seconds?: number
  performer?: string
  title?: string
  discard_reason?: string
  message_id?: number
  location_information?: { latitude?: number; longitude?: number }
  contact_information?: { first_name?: string; last_name?: string; phone_number?: string }
  poll?: { question?: string }
}

const CHAT_TYPES = [
  'personal_chat',
  'bot_chat',
  'saved_messages',
  'private_group',
  'private_supergroup',
  'public_supergroup',
  'private_channel',
  'public_channel',
]

export function isTelegramExport(document: unknown): document is TelegramChat {
  const d = document as Partial<TelegramChat> | null
  return (
    typeof d === 'object' &&
    d !== null &&
    !('format' in d) &&
    Array.isArray(d.messages) &&
    typeof d.type === 'string' &&
    CHAT_TYPES.includes(d.type)
  )
}

export interface Mapped {
  messages: Array<{ at: string; message: StoredMessage }>
  refused: Array<{ at: string; reason: string }>
}

export function mapTelegram(
  chat: TelegramChat,
  { owner, peer }: { owner: string; peer: string },
): Mapped | { problems: Located[] } {
  if (chat.type !== 'personal_chat')
    return {
      problems: [{ path: ['type'], problem: `is "${chat.type}": udsu imports personal chats only (one partner)` }],
    }
  if (typeof chat.id !== 'number')
    return { problems: [{ path: ['id'], problem: "is missing: it tells which messages are the partner's" }] }
  const partner = `user${chat.id}`
  const problems: Located[] = []
  const mapped: Mapped = { messages: [], refused: [] }
  const byId = new Map<number, { from: string; text: string }>()

  chat.messages.forEach((raw, i) => {
    const path = ['messages', String(i)]
    const at = `$.messages[${i}]`
    if (typeof raw !== 'object' || raw === null || typeof (raw as TelegramMessage).id !== 'number') {
      return problems.push({ path, problem: 'is not a message (an object with a numeric id)' })
    }
    const m = raw as TelegramMessage
    const ts = telegramTime(m.date_unixtime, m.date)
    if (ts === undefined)
      return problems.push({
        path: [...path, m.date_unixtime !== undefined ? 'date_unixtime' : 'date'],
        problem: `has no valid date (${JSON.stringify(m.date_unixtime ?? m.date)})`,
      })
    const fromPartner = (m.type === 'service' ? m.actor_id : m.from_id) === partner
    let text: string
    if (m.type === 'message') text = messageText(m, byId)
    else if (m.type === 'service') text = serviceText(m, byId)
    else return mapped.refused.push({ at, reason: `a Telegram entry of type "${m.type}", which udsu does not know` })
    if (!text.trim()) return mapped.refused.push({ at, reason: 'a message with no text and no media udsu can show' })
    const from = fromPartner ? peer : owner
    byId.set(m.id, { from, text })
    const message: StoredMessage = {
      id: `telegram-${chat.id}-${m.id}`,
      from,
      to: fromPartner ? owner : peer,
      text,
      ts,
      peer,
      out: !fromPartner,
      storedAt: ts,
    }
    if (!fromPartner) message.state = 'delivered'
    mapped.messages.push({ at, message })
  })
  return problems.length ? { problems } : mapped
}

/** Telegram writes `date_unixtime` (seconds, as a string) and `date` in the exporting machine's local time. */
function telegramTime(unix: string | undefined, local: string | undefined): number | undefined {
  if (unix !== undefined) return /^\d{1,12}$/.test(unix) ? Number(unix) * 1000 : undefined
  if (local === undefined || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/.test(local)) return undefined
  const ms = Date.parse(local)
  return Number.isFinite(ms) ? ms : undefined
}

/** Text with its formatting flattened; a link whose text is not its address keeps the address in brackets. */
export function flatten(text: string | TextPart[] | undefined): string {
  if (text === undefined) return ''
  if (typeof text === 'string') return text
  return text
    .map((part) => {
      if (typeof part === 'string') return part
      const shown = part.text ?? ''
      return part.type === 'text_link' && part.href && part.href !== shown ? `${shown} (${part.href})` : shown
    })
    .join('')
}

const duration = (seconds: number | undefined) =>
  seconds === undefined ? '' : `, ${Math.floor(seconds / 60)}:${String(Math.floor(seconds % 60)).padStart(2, '0')}`

function media(m: TelegramMessage): string | undefined {
  if (m.photo !== undefined) return '[photo]'
  switch (m.media_type) {
    case 'sticker':
      return `[sticker${m.sticker_emoji ? ` ${m.sticker_emoji}` : ''}]`
    case 'voice_message':
      return `[voice message${duration(m.duration_seconds)}]`
    case 'video_message':
      return `[video message${duration(m.duration_seconds)}]`
    case 'video_file':
      return `[video${duration(m.duration_seconds)}]`
    case 'animation':
      return '[GIF]'
    case 'audio_file':
      return `[audio${m.performer || m.title ? `: ${[m.performer, m.title].filter(Boolean).join(' – ')}` : ''}${duration(m.duration_seconds)}]`
    case undefined:
      break // no media type: a file, a location, a contact or a poll below, or plain text
  }
  if (m.file !== undefined) return `[file${m.file_name ? `: ${m.file_name}` : ''}]`
  if (m.location_information)
    return `[location ${m.location_information.latitude}, ${m.location_information.longitude}]`
  if (m.contact_information) {
    const c = m.contact_information
    return `[contact: ${[c.first_name, c.last_name].filter(Boolean).join(' ')}${c.phone_number ? ` ${c.phone_number}` : ''}]`
  }
  if (m.poll) return `[poll: ${m.poll.question ?? ''}]`
  return undefined
}

const snippet = (text: string) =>
  text.length > 40 ? `${text.slice(0, 40).replace(/\n/g, ' ')}…` : text.replace(/\n/g, ' ')

function messageText(m: TelegramMessage, byId: Map<number, { from: string; text: string }>): string {
  const lines: string[] = []
  if (m.forwarded_from !== undefined) lines.push(`[forwarded from ${m.forwarded_from ?? 'a deleted account'}]`)
  if (m.reply_to_message_id !== undefined) {
    const original = byId.get(m.reply_to_message_id)
    lines.push(
      original
        ? `[reply to ${original.from}: "${snippet(original.text)}"]`
        : `[reply to message ${m.reply_to_message_id}]`,
    )
  }
  const placeholder = media(m)
  if (placeholder) lines.push(placeholder)
  const body = flatten(m.text)
  if (body) lines.push(body)
  if (m.edited !== undefined || m.edited_unixtime !== undefined) {
    const at = telegramTime(m.edited_unixtime, m.edited)
    lines.push(
      at === undefined ? '[edited]' : `[edited ${new Date(at).toISOString().slice(0, 16).replace('T', ' ')} UTC]`,
    )
  }
  return lines.join('\n')
}

function serviceText(m: TelegramMessage, byId: Map<number, { from: string; text: string }>): string {
  switch (m.action) {
    case 'phone_call':
      if (m.discard_reason === 'missed') return '[missed call]'
      if (m.discard_reason === 'busy') return '[call declined]'
      return `[call${duration(m.duration_seconds)}]`
    case 'pin_message': {
      const pinned = m.message_id === undefined ? undefined : byId.get(m.message_id)
      return pinned
        ? `[pinned: "${snippet(pinned.text)}"]`
        : `[pinned message ${m.message_id ?? ''}]`.replace(' ]', ']')
    }
    default:
      return `[${(m.action ?? 'service message').replace(/_/g, ' ')}${m.text ? `: ${flatten(m.text)}` : ''}]`
  }
}
