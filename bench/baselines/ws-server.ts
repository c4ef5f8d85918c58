import { listenOnBareWs, serveV1 } from './rooms.js'

/** Baseline: protocol v1 rooms on a bare `ws` server (any path is accepted). */
listenOnBareWs(serveV1)
