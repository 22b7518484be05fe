import { describe, expect, it } from 'vitest';
import { prettyLine } from '../../device/runtime/pretty.js';

describe('rc-device run --pretty', () => {
  it('prints a pino record as time, level, component, message and the other fields', () => {
    const line = JSON.stringify({
      level: 40,
      time: Date.parse('2026-11-24T08:02:03.456Z'),
      pid: 1,
      component: 'runtime',
      code: 'io.no-ack',
      peripheral: 'gate 1',
      msg: 'peripheral down',
    });
    expect(prettyLine(line)).toBe('08:02:03.456 WARN  [runtime] peripheral down  code=io.no-ack peripheral="gate 1"');
  });

  it('passes a line that is not JSON through unchanged', () => {
    expect(prettyLine('plain text')).toBe('plain text');
  });
});
