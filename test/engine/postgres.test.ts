import t from 'tap'
import { testEngine, cleanUpTestResources } from '../helpers/engine.js'
import { engineConformance } from './conformance.js'

cleanUpTestResources(t)
engineConformance('redis broker + postgres history + redis presence', settings => testEngine({ broker: 'redis', history: 'postgres', presence: 'redis' }, settings))
engineConformance('one node, postgres history', settings => testEngine({ broker: 'memory', history: 'postgres', presence: 'memory' }, settings))
