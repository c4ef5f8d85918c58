import fastifyWebsocket from '@fastify/websocket'
import fp from 'fastify-plugin'
import type { Config } from '../lib/config.js'

export interface WebsocketPluginOptions {
  config: Pick<Config, 'maxPayload' | 'perMessageDeflate'>
}

/**
 * Registers @fastify/websocket unless the host already did: a second registration would install a
 * second upgrade listener on the same server. A host's registration keeps the host's options (its
 * permessage-deflate offer included); the session then enforces MAX_PAYLOAD itself.
 */
export default fp<WebsocketPluginOptions>(async function websocket (fastify, opts) {
  if (opts.config === undefined) throw new Error('websocket plugin: options.config is required')
  if (fastify.hasDecorator('websocketServer')) return
  await fastify.register(fastifyWebsocket, {
    options: {
      maxPayload: opts.config.maxPayload,
      // The outbox compresses each message once for every recipient, without context takeover; ws only
      // negotiates and inflates what clients send. The outbox answers pings (see ws-adapter.ts).
      perMessageDeflate: opts.config.perMessageDeflate ? { serverNoContextTakeover: true } : false,
      autoPong: false,
      // A token offered as a subprotocol must never be echoed back: only `switchboard` is.
      handleProtocols: (protocols: Set<string>) => protocols.has('switchboard') ? 'switchboard' : false
    },
    // The lifecycle plugin drains and closes our sockets with 1001; the default would close them
    // before their queued messages are written.
    preClose (done) {
      this.websocketServer.close()
      done()
    }
  })
}, { name: 'websocket', fastify: '5.x' })
