/**
 * A request URL with the value of its `token` query parameter replaced, for logs. The query is parsed
 * the way the server reads it, so an encoded name (`%74oken=`) is redacted too.
 */
export function withoutToken (url: string): string {
  const question = url.indexOf('?')
  if (question === -1) return url
  const params = new URLSearchParams(url.slice(question + 1))
  if (!params.has('token')) return url
  params.set('token', '[redacted]')
  return `${url.slice(0, question)}?${params.toString().replace('%5Bredacted%5D', '[redacted]')}`
}
