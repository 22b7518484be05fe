/**
 * Set every modification time in a ZIP archive to one fixed DOS date and time.
 * exceljs (through JSZip) stamps each entry with the current time, so the same
 * workbook written twice would differ; XLSX is a ZIP, and this makes it depend
 * on the document only. Walks the central directory from the end record and
 * patches each central and local header in place.
 */
export function fixZipDates(zip: Buffer, at: Date): Buffer {
  const y = Math.max(1980, at.getUTCFullYear());
  const dosDate = ((y - 1980) << 9) | ((at.getUTCMonth() + 1) << 5) | at.getUTCDate();
  const dosTime = (at.getUTCHours() << 11) | (at.getUTCMinutes() << 5) | Math.floor(at.getUTCSeconds() / 2);
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 65_535); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip archive: no end of central directory');
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error('zip central directory is malformed');
    zip.writeUInt16LE(dosTime, p + 12);
    zip.writeUInt16LE(dosDate, p + 14);
    const local = zip.readUInt32LE(p + 42);
    if (zip.readUInt32LE(local) !== 0x04034b50) throw new Error('zip local header is malformed');
    zip.writeUInt16LE(dosTime, local + 10);
    zip.writeUInt16LE(dosDate, local + 12);
    p += 46 + zip.readUInt16LE(p + 28) + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32);
  }
  return zip;
}
