import { Writable } from 'node:stream';

/**
 * A tiny pino pretty printer for `rc-device run --pretty` (pino-pretty is not
 * a dependency): one line per record, "12:03:04.123 INFO  [runtime] tap decided reader=… seq=4".
 * A line that is not JSON is passed through as it is.
 */
const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'component', 'name']);

function fmtValue(v: unknown): string {
  if (typeof v === 'string') return /\s/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

export function prettyLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof o !== 'object' || o === null) return line;
  const t = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 23) : '';
  const lvl = LEVELS[Number(o.level)] ?? String(o.level);
  const comp = o.component !== undefined ? `[${String(o.component)}] ` : '';
  const rest = Object.entries(o)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${fmtValue(v)}`)
    .join(' ');
  return `${t} ${lvl} ${comp}${String(o.msg ?? '')}${rest ? `  ${rest}` : ''}`;
}

export function prettyStream(out: NodeJS.WritableStream = process.stderr): Writable {
  let buf = '';
  return new Writable({
    write(chunk: Buffer, _e, cb) {
      buf += chunk.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (l.trim()) out.write(`${prettyLine(l)}\n`);
      }
      cb();
    },
  });
}
