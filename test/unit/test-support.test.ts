import { describe, expect, it } from 'vitest';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { luhnOk } from '../../protocol/pan.js';
import { expectRcError, rcErrorCodeOf } from '../support/errors.js';
import { logSink } from '../support/log.js';
import { CANARY_PAN, CANARY_PAN_19, MIR_PAN, MIR_PAN_19, MIR_PAN_2, MIR_PAN_BAD_LUHN, PAN, syntheticPan, VISA_PAN } from '../support/pans.js';
import { waitFor } from '../support/wait.js';

const refuse = (): never => {
  throw new RcError(ErrorCode.CardRemoved, 'card removed');
};

describe('test support', () => {
  it('waitFor resolves with the first truthy value of the condition', async () => {
    let n = 0;
    await expect(waitFor(() => (++n >= 3 ? `after ${n}` : null), { timeoutMs: 1000, what: 'three polls', everyMs: 1 })).resolves.toBe('after 3');
  });

  it('waitFor fails saying what it waited for and the last error of the condition', async () => {
    await expect(waitFor(() => false, { timeoutMs: 20, what: 'the impossible', everyMs: 5 })).rejects.toThrow(
      /timed out after 20 ms waiting for the impossible/,
    );
    const failing = () => {
      throw new Error('not yet');
    };
    await expect(waitFor(failing, { timeoutMs: 20, what: () => 'a flaky thing', everyMs: 5 })).rejects.toThrow(/a flaky thing \(last error: not yet\)/);
  });

  it('expectRcError returns the coded error of a function or a promise, and fails on anything else', async () => {
    expect(expectRcError(refuse, ErrorCode.CardRemoved).message).toBe('card removed');
    expect((await expectRcError(Promise.reject(new RcError(ErrorCode.CardRemoved, 'x')), /^card\./)).code).toBe('card.removed');
    expect((await expectRcError(async () => refuse(), [ErrorCode.CardRemoved, ErrorCode.CardNotMir])).code).toBe('card.removed');
    expect(() => expectRcError(() => 1)).toThrow(/nothing was thrown/);
    expect(() => expectRcError(() => JSON.parse('{'))).toThrow(/expected an RcError/);
    await expect(expectRcError(Promise.resolve(1))).rejects.toThrow(/nothing was thrown/);
    expect(() => expectRcError(refuse, ErrorCode.CardNotMir)).toThrow();
  });

  it('rcErrorCodeOf tells a coded refusal, no error and a stray exception apart', () => {
    expect(rcErrorCodeOf(refuse)).toBe('card.removed');
    expect(rcErrorCodeOf(() => 1)).toBeUndefined();
    expect(rcErrorCodeOf(() => JSON.parse('{'))).toMatch(/^not an RcError/);
  });

  it('the PAN fixtures are synthetic and Luhn-valid, except the one meant to fail', () => {
    for (const p of [MIR_PAN, MIR_PAN_2, MIR_PAN_19, VISA_PAN, CANARY_PAN, CANARY_PAN_19, ...Object.values(PAN), syntheticPan(0), syntheticPan(12345)]) {
      expect(luhnOk(p), p).toBe(true);
    }
    expect(luhnOk(MIR_PAN_BAD_LUHN)).toBe(false);
  });

  it('the log sink keeps what was logged, with the PAN redaction of the real logger', () => {
    const sink = logSink({ level: 'debug' });
    sink.log.child({ component: 'test' }).info({ pan: MIR_PAN, n: 1 }, 'tapped');
    expect(sink.records()).toMatchObject([{ component: 'test', n: 1, msg: 'tapped', pan: '[redacted]' }]);
    expect(sink.text()).not.toContain(MIR_PAN);
  });
});
