import t from 'tap'
import { testEngine, cleanUpTestResources } from '../helpers/engine.js'
import { engineConformance } from './conformance.js'

cleanUpTestResources(t)
// The chat design's topology: RabbitMQ fan-out, messages in PostgreSQL, presence in Redis.
engineConformance('amqp broker + postgres history + redis presence', settings => testEngine({ broker: 'amqp', history: 'postgres', presence: 'redis' }, settings))
engineConformance('amqp broker (fanout routing) + postgres history', settings => testEngine({ broker: 'amqp', history: 'postgres', presence: 'memory', amqpRouting: 'fanout' }, settings))
