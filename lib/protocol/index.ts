/** The wire protocol, for clients and embedders: schemas and codec, the error catalogue, priorities. */
export * from './codec.js'
export * from './errors.js'
export * from './priority.js'
export * from './schemas.js'
