/** A request URL with the value of its `token` query parameter replaced, for logs. */
export function withoutToken (url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]')
}
