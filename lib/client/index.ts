/**
 * The Switchboard client, for browsers (native WebSocket) and Node 20+ (pass `ws` as the WebSocket
 * option). Plain ESM without Node-only imports; see docs/client.md.
 */
export { Switchboard, type ConnectionState, type SwitchboardEvents, type SwitchboardOptions, type WebSocketConstructor, type WebSocketLike } from './switchboard.js'
export { Room, type PresenceMember, type PublishOptions, type RoomEvents, type RoomMessage, type RoomOptions } from './room.js'
export { SwitchboardError, type ClientErrorCode } from './errors.js'
