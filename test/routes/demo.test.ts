import Fastify from 'fastify'
import t from 'tap'
import switchboard from '../../app.js'
import { buildApp } from '../helpers/app.js'

t.test('the demo page and the browser client are served', async t => {
  const app = await buildApp(t)
  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.body, /import \{ Switchboard \} from '\.\/client\/index\.js'/)
  const client = await app.inject('/client/index.js')
  t.equal(client.statusCode, 200, 'the compiled client (npm test builds it first)')
  t.match(client.headers['content-type'], /^text\/javascript/)
  t.match(client.body, /from '\.\/switchboard\.js'/)
  for (const file of ['switchboard.js', 'room.js', 'emitter.js', 'errors.js', 'seen-seqs.js', 'backoff.js']) {
    const response = await app.inject(`/client/${file}`)
    t.equal(response.statusCode, 200, file)
    t.notMatch(response.body, /from '(?!\.\/)/, `${file} imports only its siblings, so a browser can load it as it is`)
  }
  t.same((await app.inject('/client/..%2Fconfig.js')).json().code, 'not_found', 'nothing outside the client')
  t.same((await app.inject('/client/nope.js')).json().code, 'not_found')
})

t.test('under a prefix the page is served with a trailing slash, so its relative URLs resolve', async t => {
  const host = Fastify({ logger: false })
  await host.register(switchboard, { prefix: '/rt', env: {}, workers: 1 })
  t.teardown(() => host.close())
  const bare = await host.inject('/rt?room=x')
  t.equal(bare.statusCode, 302)
  t.equal(bare.headers.location, '/rt/?room=x')
  t.equal((await host.inject('/rt/')).statusCode, 200)
})

t.test('DEMO=false serves neither', async t => {
  const app = await buildApp(t, { demo: false })
  t.equal((await app.inject('/')).statusCode, 404)
  t.equal((await app.inject('/client/index.js')).statusCode, 404)
})
