import t from 'tap'
import { testEngine, cleanUpTestResources } from '../helpers/engine.js'
import { engineConformance } from './conformance.js'

cleanUpTestResources(t)
engineConformance('nats broker + postgres history', settings => testEngine({ broker: 'nats', history: 'postgres', presence: 'memory' }, settings))
engineConformance('nats broker + redis history and presence', settings => testEngine({ broker: 'nats', history: 'redis', presence: 'redis' }, settings))
