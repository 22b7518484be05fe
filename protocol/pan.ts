/**
 * Card-number checks shared by the device (EMV read, on a buffer of ASCII
 * digits it wipes afterwards) and the server (CSV import, on the row's text).
 */

/** Luhn (mod 10) check over ASCII digits, given as a string or a byte buffer. */
export function luhnOk(digits: string | Uint8Array): boolean {
  const at = typeof digits === 'string' ? (i: number) => digits.charCodeAt(i) : (i: number) => digits[i]!;
  let sum = 0;
  let dbl = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = at(i) - 0x30;
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 === 0;
}

/** `body` followed by its Luhn check digit: synthetic card numbers (demo, tests) that pass luhnOk. */
export function withLuhnDigit(body: string): string {
  for (let d = 0; d <= 9; d++) if (luhnOk(body + d)) return body + d;
  throw new Error(`not a string of digits: length ${body.length}`);
}
