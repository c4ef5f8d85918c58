import { testEngine } from '../helpers/engine.js'
import { engineConformance } from './conformance.js'

engineConformance('redis engine', settings => testEngine({ broker: 'redis', history: 'redis', presence: 'redis' }, settings))
