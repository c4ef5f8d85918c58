import t from 'tap'
import { withoutToken } from '../../../lib/auth/redact.js'

t.test('the token query parameter is redacted however it is spelled', async t => {
  t.equal(withoutToken('/ws?token=abc.def.ghi'), '/ws?token=[redacted]')
  t.equal(withoutToken('/ws?room=x&%74oken=abc'), '/ws?room=x&token=[redacted]')
  t.equal(withoutToken('/ws?room=x'), '/ws?room=x')
  t.equal(withoutToken('/ws'), '/ws')
})
