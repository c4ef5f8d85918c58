import { serveWithFeatures } from './features.js'
import { listenOnBareWs } from './rooms.js'

/** Baseline: bare ws with Switchboard's per-op features written inline (features.ts). */
listenOnBareWs(serveWithFeatures)
