// End to end: a real rendezvous server, two real clients with the web frontend, and Debian's chromium driving both pages.
import { expect as expectChai } from 'chai'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { Browser, Page } from 'playwright-core'
import {
  cleanupTemp,
  FIXTURE_KEYS,
  fixtureProfile,
  HeadlessClient,
  ServerProcess,
  tempDir,
} from '../../../test/support/processes'
import { ARTIFACTS, expect, launchChromium, requireChromium, WebClient } from './support'

const HOSTILE_IMG = '<img src=x onerror=alert(1)>'
const HOSTILE_SCRIPT = '<script>window.__pwned = 1</script><b>bold?</b>'
const LINK = 'see https://example.com/tracker.png and javascript:alert(2)'

/** A page that records what must never happen: dialogs (alert) and requests to anywhere but its own origin. */
async function openPage(
  browser: Browser,
  client: WebClient,
  refused: { dialogs: string[]; requests: string[] },
): Promise<Page> {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 720 } })
  const page = await context.newPage()
  const origin = new URL(client.url).origin
  page.on('dialog', (dialog) => {
    refused.dialogs.push(dialog.message())
    void dialog.dismiss()
  })
  // A request the CSP blocks is still reported as issued, then failed: only one that got an answer went out.
  page.on('requestfinished', (request) => {
    if (!request.url().startsWith(origin) && !request.url().startsWith('blob:')) refused.requests.push(request.url())
  })
  // A stand-in for the browser's Notification that records what would be shown (headless Chromium shows nothing).
  await page.addInitScript(() => {
    const shown: Array<{ title: string; body?: string }> = ((
      window as unknown as { notificationsShown: unknown[] }
    ).notificationsShown = [])
    class RecordedNotification {
      static permission = 'granted'
      static requestPermission = async () => 'granted'
      constructor(title: string, options?: { body?: string }) {
        shown.push({ title, body: options?.body })
      }
    }
    Object.defineProperty(window, 'Notification', { value: RecordedNotification })
  })
  await page.goto(client.url)
  return page
}

async function start(page: Page, name: string, server: string): Promise<void> {
  await page.getByLabel('Name').fill(name)
  await page.getByLabel('Server').fill(server)
  await page.getByRole('button', { name: 'Start' }).click()
  await expect(page.getByRole('log', { name: 'Messages' })).toBeVisible({ timeout: 20_000 })
}

async function openConversation(page: Page, peer: string): Promise<void> {
  const contacts = page.getByRole('list', { name: 'Contacts' })
  // The contact list asks the server who is online every 5 s; the item appears by itself.
  await contacts.getByRole('listitem', { name: new RegExp(`^${peer}, online`) }).click({ timeout: 20_000 })
  await expect(page.getByRole('heading', { name: peer })).toBeVisible()
}

async function send(page: Page, text: string): Promise<void> {
  await page.getByRole('textbox', { name: 'Message' }).fill(text)
  await page.getByRole('button', { name: 'Send' }).click()
}

const own = (page: Page, text: string) =>
  page
    .getByRole('log', { name: 'Messages' })
    .locator('article.own')
    .filter({ has: page.locator('.text', { hasText: text }) })
const theirs = (page: Page, text: string) =>
  page.getByRole('log', { name: 'Messages' }).locator('article:not(.own) .text').filter({ hasText: text })

describe('web frontend in Chromium: a real server, two real clients', function () {
  this.timeout(180_000)
  before(requireChromium)

  let server: ServerProcess
  let alice: WebClient
  let bob: WebClient
  let browser: Browser
  let alicePage: Page
  let bobPage: Page
  let bobProfile: string
  let aliceProfile: string
  /** alice's $XDG_DATA_HOME, where her start window remembers what she typed. */
  let aliceData: string
  const refused = { dialogs: [] as string[], requests: [] as string[] }

  before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true })
    bobProfile = fixtureProfile('bob')
    aliceData = tempDir('udsu-web-data-')
    server = await ServerProcess.start()
    ;[alice, bob] = await Promise.all([
      WebClient.start({
        server: server.address,
        profile: (aliceProfile = fixtureProfile('alice')),
        dataHome: aliceData,
      }),
      WebClient.start({ server: server.address, profile: bobProfile }),
    ])
    browser = await launchChromium()
    alicePage = await openPage(browser, alice, refused)
    bobPage = await openPage(browser, bob, refused)
  })

  after(async () => {
    await browser?.close()
    await Promise.all([alice?.stop(), bob?.stop()])
    server?.kill()
    cleanupTemp()
  })

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return
    await alicePage?.screenshot({ path: path.join(ARTIFACTS, `failed-alice-${Date.now()}.png`) }).catch(() => undefined)
    await bobPage?.screenshot({ path: path.join(ARTIFACTS, `failed-bob-${Date.now()}.png`) }).catch(() => undefined)
    console.log(`alice:\n${alice?.describe()}\nbob:\n${bob?.describe()}`)
  })

  it('prints one line on stdout with the URL and its secret', () => {
    expectChai(alice.stdout).to.have.length(1)
    expectChai(alice.url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{43}\/$/)
    expectChai(alice.secret).to.not.equal(bob.secret)
  })

  it('shows a bad address, an unreachable server and a bad name inline, and the start window stays', async () => {
    const page = alicePage
    await expect(page.getByLabel('Server')).toHaveValue(server.address)
    await page.getByLabel('Name').fill('alice')
    await page.getByLabel('Server').fill('not an address')
    await page.getByRole('button', { name: 'Start' }).click()
    await expect(page.locator('#start-server-problem')).toContainText('Bad address')
    await page.getByLabel('Server').fill('no-such-host.invalid:7777')
    await page.getByRole('button', { name: 'Start' }).click()
    await expect(page.locator('#start-server-problem')).toContainText('no host "no-such-host.invalid"')
    // TEST-NET-1 (RFC 5737): routed nowhere, so nothing answers.
    await page.getByLabel('Server').fill('192.0.2.1:7777')
    await page.getByRole('button', { name: 'Start' }).click()
    await expect(page.locator('#start-server-problem')).toContainText('unreachable', { timeout: 10_000 })
    await page.getByLabel('Name').fill('al ice!')
    await page.getByLabel('Server').fill(server.address)
    await page.getByRole('button', { name: 'Start' }).click()
    await expect(page.locator('#start-name-problem')).toContainText('The name must be')
    await expect(page.locator('#start-server-problem')).toHaveText('')
    await expect(page.getByRole('button', { name: 'Start' })).toBeEnabled()
    await expect(page.getByLabel('Name')).toHaveAttribute('aria-invalid', 'true')
    await page.screenshot({ path: path.join(ARTIFACTS, 'start-window-errors.png') })
  })

  it('starts both clients from their start windows', async () => {
    await Promise.all([start(alicePage, 'alice', server.address), start(bobPage, 'bob', server.address)])
    await expect(alicePage.getByRole('status').filter({ hasText: `Server ${server.address} online` })).toBeVisible()
  })

  it('chats both ways: delivery states, unread badges, day separators, multi-line text', async () => {
    // Every state an own message shows is recorded as it changes.
    await alicePage.evaluate(() => {
      const seen: string[] = ((window as unknown as { statesSeen: string[] }).statesSeen = [])
      new MutationObserver(() => {
        const state = document.querySelector('#messages article.own .state')?.textContent
        if (state && seen[seen.length - 1] !== state) seen.push(state)
      }).observe(document.getElementById('messages')!, { subtree: true, childList: true, characterData: true })
    })
    await openConversation(alicePage, 'bob')
    await send(alicePage, 'Hello bob')
    await expect(own(alicePage, 'Hello bob').locator('.state')).toHaveText('delivered', { timeout: 20_000 })
    const states = await alicePage.evaluate(() => (window as unknown as { statesSeen: string[] }).statesSeen)
    expectChai(states[states.length - 1]).to.equal('delivered')
    expectChai(
      states.every(
        (s, i) =>
          i === 0 ||
          ['pending', 'sent', 'delivered'].indexOf(s) > ['pending', 'sent', 'delivered'].indexOf(states[i - 1]),
      ),
    ).to.equal(true, states.join(' → '))

    // Bob has not opened the conversation: an unread badge on alice.
    await expect(bobPage.getByRole('listitem', { name: /^alice, online.*1 unread/ })).toBeVisible({ timeout: 20_000 })
    expectChai(await bobPage.title()).to.equal('(1) udsu')
    await bobPage.getByRole('listitem', { name: /^alice/ }).click()
    await expect(theirs(bobPage, 'Hello bob')).toBeVisible()
    await expect(bobPage.getByRole('listitem', { name: /^alice/ })).toHaveAttribute(
      'aria-label',
      /^alice, online(?!.*unread)/,
    )
    const today = new Intl.DateTimeFormat(undefined, {
      weekday: 'short',
      day: 'numeric',
      month: 'short',
      year: 'numeric',
    }).format(new Date())
    await expect(bobPage.getByRole('separator', { name: today })).toBeVisible()

    // Shift+Enter is a new line, Enter sends.
    const composer = bobPage.getByRole('textbox', { name: 'Message' })
    await composer.click()
    await composer.pressSequentially('line one')
    await composer.press('Shift+Enter')
    await composer.pressSequentially('line two')
    await composer.press('Enter')
    await expect(composer).toHaveValue('')
    await expect(own(bobPage, 'line one').locator('.state')).toHaveText('delivered', { timeout: 20_000 })
    await expect(theirs(alicePage, 'line one')).toHaveText('line one\nline two')

    // A pasted multi-line text is sent as it was pasted: through the real clipboard and Ctrl+V.
    await bobPage.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(bob.url).origin })
    await bobPage.evaluate(() => navigator.clipboard.writeText('pasted one\npasted two\n\npasted four'))
    await composer.click()
    await composer.press('Control+V')
    await expect(composer).toHaveValue('pasted one\npasted two\n\npasted four')
    await composer.press('Enter')
    await expect(theirs(alicePage, 'pasted one')).toHaveText('pasted one\npasted two\n\npasted four', {
      timeout: 20_000,
    })
  })

  it('shows hostile text as text: no HTML, no script, no request anywhere', async () => {
    for (const text of [HOSTILE_IMG, HOSTILE_SCRIPT, LINK]) await send(bobPage, text)
    for (const text of [HOSTILE_IMG, HOSTILE_SCRIPT, LINK])
      await expect(theirs(alicePage, text)).toHaveText(text, { timeout: 20_000 })
    const log = alicePage.getByRole('log', { name: 'Messages' })
    await expect(log.locator('img, script, b, a, iframe')).toHaveCount(0)
    expectChai(await alicePage.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).to.equal(undefined)
    expectChai(refused.dialogs).to.deep.equal([])
    expectChai(refused.requests).to.deep.equal([])
    // The own side shows them as text too.
    await expect(own(bobPage, HOSTILE_IMG).locator('.text')).toHaveText(HOSTILE_IMG)
    await expect(bobPage.getByRole('log', { name: 'Messages' }).locator('img, script')).toHaveCount(0)
  })

  it('enforces the Content-Security-Policy: an injected inline script and a remote image are refused', async () => {
    const violations = await alicePage.evaluate(async () => {
      const seen: string[] = []
      // Both refusals are reported as events; the timeout only bounds a page that would not refuse.
      const bothRefused = new Promise<void>((resolve) => {
        document.addEventListener('securitypolicyviolation', (e) => {
          seen.push(e.violatedDirective)
          // Each refusal is reported once per policy (the header's and the page's <meta>).
          if (seen.some((d) => d.startsWith('script-src')) && seen.some((d) => d.startsWith('img-src'))) resolve()
        })
        setTimeout(resolve, 5000)
      })
      const script = document.createElement('script')
      script.textContent = 'window.__inlineRan = true'
      document.body.append(script)
      const image = document.createElement('img')
      image.src = 'http://example.com/pixel.png'
      document.body.append(image)
      await bothRefused
      image.remove()
      script.remove()
      return { seen, ran: (window as unknown as { __inlineRan?: boolean }).__inlineRan === true }
    })
    expectChai(violations.ran).to.equal(false)
    expectChai(violations.seen.some((d) => d.startsWith('script-src'))).to.equal(true, violations.seen.join(', '))
    expectChai(violations.seen.some((d) => d.startsWith('img-src'))).to.equal(true, violations.seen.join(', '))
    expectChai(refused.requests).to.deep.equal([])
  })

  it('shows the same safety number on both sides', async () => {
    await alicePage.getByRole('button', { name: 'Safety number' }).click()
    await bobPage.getByRole('button', { name: 'Safety number' }).click()
    const aliceNumber = alicePage.getByRole('region', { name: 'Safety number' }).locator('.safety-number')
    await expect(aliceNumber).toHaveText(/\d{5}/)
    await expect(bobPage.getByRole('region', { name: 'Safety number' }).locator('.safety-number')).toHaveText(
      (await aliceNumber.textContent())!,
    )
    await alicePage.screenshot({ path: path.join(ARTIFACTS, 'safety-number.png') })
    await alicePage.getByRole('button', { name: 'Close' }).first().click()
    await expect(alicePage.getByRole('region', { name: 'Safety number' })).toBeHidden()
    await alicePage.screenshot({ path: path.join(ARTIFACTS, 'chat-window.png') })
    await alicePage.emulateMedia({ colorScheme: 'dark' })
    await alicePage.screenshot({ path: path.join(ARTIFACTS, 'chat-window-dark.png') })
    await alicePage.emulateMedia({ colorScheme: 'light' })
  })

  it('finds messages with search', async () => {
    const search = alicePage.getByRole('searchbox', { name: 'Search' })
    await search.fill('pasted two')
    await search.press('Enter')
    const results = alicePage.getByRole('region', { name: 'Search results' })
    // The history plugin's search matches words: each is marked where it occurs in the one message found.
    await expect(results.locator('mark').filter({ hasText: 'two' })).toHaveText('two')
    await expect(results.locator('mark').filter({ hasText: 'pasted' })).toHaveCount(3)
    await expect(results.getByRole('listitem')).toHaveCount(1)
    await search.press('Escape')
    await expect(results).toBeHidden()
  })

  let exported = ''
  it("exports the conversation to a file in the CLI's format, hostile text verbatim", async () => {
    const [download] = await Promise.all([
      alicePage.waitForEvent('download'),
      alicePage.getByRole('button', { name: 'Export history' }).click(),
    ])
    expectChai(download.suggestedFilename()).to.match(/^udsu-alice-bob-\d{4}-\d\d-\d\d\.json$/)
    exported = path.join(tempDir('udsu-export-'), download.suggestedFilename())
    await download.saveAs(exported)
    // What `udsu history export --format json` writes: one compact message per line.
    const text = fs.readFileSync(exported, 'utf8')
    const file = JSON.parse(text) as {
      format: string
      version: number
      owner: string
      messages: Array<{ peer: string; text: string; out: boolean; state?: string; sent: string }>
    }
    expectChai(file).to.include({ format: 'udsu-history', version: 1, owner: 'alice' })
    expectChai(text.split('\n').slice(1, -2)).to.deep.equal(
      file.messages.map((m, i) => `${JSON.stringify(m)}${i < file.messages.length - 1 ? ',' : ''}`),
    )
    const texts = file.messages.map((m) => m.text)
    expectChai(texts).to.include.members(['Hello bob', 'line one\nline two', HOSTILE_IMG, HOSTILE_SCRIPT, LINK])
    expectChai(file.messages.every((m) => m.peer === 'bob' && !Number.isNaN(Date.parse(m.sent)))).to.equal(true)
    expectChai(file.messages.find((m) => m.text === 'Hello bob')).to.include({ out: true, state: 'delivered' })
  })

  it('imports an exported file into history: the conversation joins Contacts; a file twice adds nothing; a bad file is refused', async () => {
    // bob's conversation as carol's: her name for his, and new ids (history merges by sender and id).
    const lines = fs.readFileSync(exported, 'utf8').split('\n')
    const count = lines.filter((line) => line.startsWith('{"id"')).length
    const carolData = lines
      .map((line) =>
        line.startsWith('{"id"')
          ? line.replace(/^\{"id":"/, '{"id":"carol-').replace(/"(peer|from|to)":"bob"/g, '"$1":"carol"')
          : line,
      )
      .join('\n')
    const file = path.join(tempDir('udsu-import-'), 'carol.json')
    fs.writeFileSync(file, carolData)
    const messages = alicePage.getByRole('log', { name: 'Messages' })
    await expect(
      alicePage.getByRole('list', { name: 'Contacts' }).getByRole('listitem', { name: /^carol/ }),
    ).toHaveCount(0)
    await alicePage.locator('#import-file').setInputFiles(file)
    await expect(messages).toContainText(`Imported ${count} messages.`)
    await alicePage.screenshot({ path: path.join(ARTIFACTS, 'imported.png') })
    await alicePage
      .getByRole('list', { name: 'Contacts' })
      .getByRole('listitem', { name: /^carol/ })
      .click()
    await expect(alicePage.getByRole('heading', { name: 'carol' })).toBeVisible()
    await expect(messages.locator('article')).toHaveCount(count)
    await expect(theirs(alicePage, HOSTILE_IMG)).toHaveText(HOSTILE_IMG)
    await expect(own(alicePage, 'Hello bob').locator('.state')).toHaveText('delivered')
    await expect(messages.locator('img, script')).toHaveCount(0)
    await alicePage.screenshot({ path: path.join(ARTIFACTS, 'imported-conversation.png') })
    await alicePage.locator('#import-file').setInputFiles(file)
    await expect(messages).toContainText(`Imported 0 messages (${count} already there).`)
    await expect(messages.locator('article')).toHaveCount(count)
    const bad = path.join(tempDir('udsu-import-'), 'bad.json')
    fs.writeFileSync(bad, '{"messages": "<script>"}')
    await alicePage.locator('#import-file').setInputFiles(bad)
    await expect(messages).toContainText(
      'Import failed: bad.json cannot be imported, nothing was changed:\n  it is neither a udsu export ("format": "udsu-history")',
    )
    await expect(messages.locator('article')).toHaveCount(count)
  })

  it('notifies of a message in a background conversation, as text', async () => {
    // alice has carol's (imported) conversation open: bob's is in the background.
    await expect(alicePage.getByRole('heading', { name: 'carol' })).toBeVisible()
    await send(bobPage, '<i>ping</i> from the background')
    await expect(alicePage.getByRole('listitem', { name: /^bob, online.*1 unread/ })).toBeVisible({ timeout: 20_000 })
    // The contacts' update and the message are two events: wait for the notification the message brings.
    await alicePage.waitForFunction(
      () => (window as unknown as { notificationsShown: unknown[] }).notificationsShown.length > 0,
      undefined,
      { timeout: 10_000 },
    )
    const shown = await alicePage.evaluate(
      () => (window as unknown as { notificationsShown: unknown[] }).notificationsShown,
    )
    expectChai(shown).to.deep.include({ title: 'bob', body: '<i>ping</i> from the background' })
  })

  it('works from the keyboard: search, the contact list, the composer, switching conversations', async () => {
    const page = alicePage
    await page.keyboard.press('Control+f')
    expectChai(await page.evaluate(() => document.activeElement?.id)).to.equal('search')
    await page.keyboard.press('Tab')
    expectChai(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).to.match(/^carol/)
    await page.keyboard.press('ArrowUp')
    expectChai(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).to.match(/^bob/)
    await page.keyboard.press('Enter')
    await expect(page.getByRole('heading', { name: 'bob' })).toBeVisible()
    await expect(theirs(page, 'from the background')).toBeVisible()
    await page.waitForFunction(() => document.activeElement?.id === 'message')
    await page.keyboard.type('typed from the keyboard')
    await page.keyboard.press('Enter')
    await expect(own(page, 'typed from the keyboard').locator('.state')).toHaveText('delivered', { timeout: 20_000 })
    await page.keyboard.press('Alt+ArrowDown')
    await expect(page.getByRole('heading', { name: 'carol' })).toBeVisible()
    await page.keyboard.press('Alt+ArrowUp')
    await expect(page.getByRole('heading', { name: 'bob' })).toBeVisible()
  })

  it('loads older messages when scrolling up, with a separator for each day', async () => {
    const start = Date.UTC(2026, 0, 10, 9)
    const at = (i: number) => new Date(start + i * 30 * 60_000).toISOString()
    const messages = Array.from({ length: 120 }, (_, i) => ({
      id: `old${i}`,
      peer: 'dave',
      from: i % 2 ? 'dave' : 'alice',
      to: i % 2 ? 'alice' : 'dave',
      out: i % 2 === 0,
      ...(i % 2 === 0 ? { state: 'delivered' } : {}),
      text: `old message ${i}`,
      sent: at(i),
      received: at(i),
    }))
    const file = path.join(tempDir('udsu-import-'), 'dave.json')
    fs.writeFileSync(
      file,
      JSON.stringify({ format: 'udsu-history', version: 1, owner: 'alice', exported: at(120), messages }),
    )
    await alicePage.locator('#import-file').setInputFiles(file)
    await alicePage.getByRole('listitem', { name: /^dave, offline/ }).click()
    const log = alicePage.getByRole('log', { name: 'Messages' })
    await expect(log.locator('article')).toHaveCount(50)
    await expect(log.locator('article').last()).toContainText('old message 119')
    await log.evaluate((element) => (element.scrollTop = 0))
    await expect(log.locator('article')).toHaveCount(100)
    await log.evaluate((element) => (element.scrollTop = 0))
    await expect(log.locator('article')).toHaveCount(120)
    await expect(log.locator('article').first()).toContainText('old message 0')
    // 120 half-hours from 09:00 UTC span three or four days, depending on the browser's time zone.
    expectChai(await log.getByRole('separator').count()).to.be.within(3, 4)
  })

  it('warns with an alert when a key changes, and "Accept new key" lets messages through again', async () => {
    await bob.stop()
    // The server keeps "bob" for bob's key: moving to a new key, bob gives the name up first, from the old one (/release).
    const oldBob = await HeadlessClient.start({ name: 'bob', server: server.address, profile: bobProfile })
    oldBob.send({ type: 'command', line: '/release' })
    await oldBob.waitFor(
      (e) => e.type === 'info' && String(e.text).startsWith('the server released bob'),
      'the release',
    )
    expectChai(await oldBob.quit()).to.equal(0)
    // Bob again, with a new identity key in the same profile (carol's fixture): to alice, bob's key has changed.
    fs.copyFileSync(path.join(FIXTURE_KEYS, 'carol.pem'), path.join(bobProfile, 'identity.pem'))
    bob = await WebClient.start({ server: server.address, profile: bobProfile })
    await bobPage.close()
    bobPage = await openPage(browser, bob, refused)
    await start(bobPage, 'bob', server.address)
    await bobPage.getByLabel('Open conversation').fill('alice')
    await bobPage.getByLabel('Open conversation').press('Enter')
    await send(bobPage, 'my new key')

    await alicePage.getByRole('listitem', { name: /^bob/ }).click()
    const alert = alicePage
      .getByRole('alert')
      .filter({ hasText: 'The key of bob has changed' })
      .or(alicePage.getByRole('alert').filter({ hasText: 'the key of bob has changed' }))
    await expect(alert).toBeVisible({ timeout: 20_000 })
    await alicePage.screenshot({ path: path.join(ARTIFACTS, 'key-change-alert.png') })
    // Blocked until accepted: alice's message to bob fails with the reason (and stays queued in case the key is accepted).
    await send(alicePage, 'before accepting')
    await expect(own(alicePage, 'before accepting').locator('.state')).toHaveText('failed', { timeout: 20_000 })
    await expect(own(alicePage, 'before accepting').locator('.state')).toHaveAttribute(
      'title',
      /^failed: the key of bob has changed/,
    )
    await expect(theirs(bobPage, 'before accepting')).toHaveCount(0)
    const shown = /now ([0-9a-f ]+)\)/.exec((await alert.textContent()) ?? '')?.[1]
    expectChai(shown, 'the alert names the new key').to.match(/^[0-9a-f]{4}( [0-9a-f]{4}){15}$/)
    await alert.getByRole('button', { name: 'Accept new key of bob' }).click()
    await expect(alert).toBeHidden()
    // The key pinned is the one the alert showed (the page sent it with /trust).
    expectChai(JSON.parse(fs.readFileSync(path.join(aliceProfile, 'known-peers.json'), 'utf8'))).to.include({
      bob: shown,
    })
    await send(alicePage, 'after accepting')
    await expect(own(alicePage, 'after accepting').locator('.state')).toHaveText('delivered', { timeout: 30_000 })
    // What failed while blocked was kept, and goes out once the key is accepted.
    await expect(own(alicePage, 'before accepting').locator('.state')).toHaveText('delivered', { timeout: 30_000 })
    await expect(theirs(bobPage, 'before accepting')).toBeVisible()
    await expect(theirs(bobPage, 'after accepting')).toBeVisible()
  })

  it('remembers name and server, and shows a name taken on the server in the start window', async () => {
    // Another user (dave's key) on alice's machine account: the start window offers what alice typed last.
    const impostor = await WebClient.start({
      server: '127.0.0.1:7777',
      profile: fixtureProfile('dave'),
      dataHome: aliceData,
    })
    try {
      const page = await openPage(browser, impostor, refused)
      await expect(page.getByLabel('Name')).toHaveValue('alice')
      await expect(page.getByLabel('Server')).toHaveValue(server.address)
      await page.getByRole('button', { name: 'Start' }).click()
      await expect(page.locator('#start-name-problem')).toContainText(
        'The server refused the registration: the name "alice" belongs to another key',
        { timeout: 20_000 },
      )
      // This process cannot register under another name: Start is disabled, and the message says to start again.
      await expect(page.getByRole('button', { name: 'Start' })).toBeVisible()
      expectChai(await page.getByRole('button', { name: 'Start' }).isDisabled()).to.equal(true)
      await expect(page.locator('#start-name-problem')).toContainText('Choose another name and start udsu again.')
      await expect(page.getByRole('log', { name: 'Messages' })).toBeHidden()
      await page.screenshot({ path: path.join(ARTIFACTS, 'start-window-name-taken.png') })
      await page.close()
    } finally {
      await impostor.stop()
    }
  })
})
