import { readFile } from 'node:fs/promises'
import type { FastifyPluginAsync } from 'fastify'

/**
 * The demo chat at `/` and the client it runs, as the browser loads them: `/client/*.js` are the
 * compiled files of lib/client (dist/, made by `npm run build`; `npm start` builds first). From
 * source and from dist/ alike they are found from the package root.
 */
const packageRoot = new URL(import.meta.url.endsWith('.ts') ? '../' : '../../', import.meta.url)
const clientDir = new URL('dist/lib/client/', packageRoot)
const pageFile = new URL('public/demo.html', packageRoot)
const CLIENT_FILE = /^[a-z][a-z-]*\.js$/

const demoRoutes: FastifyPluginAsync = async (fastify) => {
  const page = await readFile(pageFile, 'utf8')

  fastify.get('/', async (request, reply) => {
    // The page loads ./client/ and ./ws relative to itself: under a prefix it must be served as /prefix/.
    const [path, query] = request.url.split('?', 2) as [string, string | undefined]
    if (!path.endsWith('/')) return reply.redirect(`${path}/${query === undefined ? '' : `?${query}`}`)
    return reply.type('text/html; charset=utf-8').send(page)
  })

  fastify.get<{ Params: { file: string } }>('/client/:file', async (request, reply) => {
    const { file } = request.params
    if (!CLIENT_FILE.test(file)) return reply.code(404).send({ code: 'not_found', message: `no client file ${file}` })
    let source: string
    try {
      source = await readFile(new URL(file, clientDir), 'utf8')
    } catch {
      return reply.code(404).send({ code: 'not_found', message: `no client file ${file} (is the client built? npm run build)` })
    }
    return reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(source)
  })
}

export default demoRoutes
