/// <reference lib="dom" />
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { chromium, type Page } from 'playwright-core'
import t from 'tap'
import { listenApp } from '../helpers/app.js'

const CHROMIUM = '/usr/bin/chromium'

/** The texts of the messages a page shows, in order. */
function texts (page: Page): Promise<string[]> {
  return page.$$eval('#messages li .text', items => items.map(item => item.textContent ?? ''))
}

async function send (page: Page, text: string): Promise<void> {
  await page.fill('#text', text)
  await page.click('#compose button[type=submit]')
}

t.test('the demo chat in two browsers: both ways, and a page that went offline shows every message once, in order', async t => {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') t.fail(`${CHROMIUM} is required in CI (.ci/run installs Debian's chromium)`)
    else t.skip(`${CHROMIUM} is not installed`, () => {})
    return
  }
  const { app, url } = await listenApp(t)
  const port = (app.server.address() as AddressInfo).port
  const page = `http://127.0.0.1:${port}/?room=e2e`
  t.ok(url.endsWith(String(port)))
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  const [alice, bob] = await Promise.all([browser.newContext(), browser.newContext()].map(async context => (await context).newPage()))
  const errors: string[] = []
  for (const p of [alice!, bob!]) p.on('pageerror', error => errors.push(error.message))
  await Promise.all([alice!.goto(page), bob!.goto(page)])
  for (const p of [alice!, bob!]) await p.waitForSelector('#state[data-state="connected"]')
  await alice!.waitForFunction(() => document.getElementById('count')?.textContent === '2')

  await send(alice!, 'hello from alice')
  await bob!.waitForFunction(() => [...document.querySelectorAll('#messages .text')].some(e => e.textContent === 'hello from alice'))
  await send(bob!, 'hi from bob')
  await alice!.waitForFunction(() => [...document.querySelectorAll('#messages .text')].some(e => e.textContent === 'hi from bob'))

  await alice!.check('#offline')
  await alice!.waitForSelector('#state[data-state="disconnected"]')
  const missed = Array.from({ length: 5 }, (_, i) => `while you were away ${i + 1}`)
  for (const text of missed) await send(bob!, text)
  await bob!.waitForFunction(n => document.querySelectorAll('#messages li').length === n, 2 + missed.length)
  await alice!.uncheck('#offline')
  await alice!.waitForFunction(n => document.querySelectorAll('#messages li').length >= n, 2 + missed.length)
  const expected = ['hello from alice', 'hi from bob', ...missed]
  t.same(await texts(alice!), expected, 'every message once, in order, after coming back')
  t.same(await texts(bob!), expected)
  t.match(await alice!.textContent('#log'), /recovered 5 missed message/, 'the page says what recovery did')

  await alice!.fill('#task-input', 'abc')
  await alice!.click('#task')
  await alice!.waitForFunction(() => document.getElementById('task-result')?.textContent !== '')
  t.equal(await alice!.textContent('#task-result'), createHash('sha256').update(JSON.stringify('abc')).digest('hex'), 'the sha256 task runs')

  mkdirSync(new URL('../artifacts/', import.meta.url), { recursive: true })
  await alice!.setViewportSize({ width: 390, height: 800 })
  await alice!.screenshot({ path: new URL('../artifacts/demo-phone.png', import.meta.url).pathname, fullPage: true })
  t.same(errors, [], 'no script errors')
})
