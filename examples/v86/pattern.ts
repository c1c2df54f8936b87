import { createHash } from 'node:crypto';

/**
 * The guest's test data, made again on the host from its definition (scripts/guest/init.sh):
 * 512-byte records "viommu-<tag> <record index, %08x> <493 filler characters>\n", the filler
 * being 0-9A-Za-z rotated left by (index mod 62), repeated and cut to 493 characters.
 */
export function guestPattern(tag: 'a' | 'b', mib: number): Uint8Array {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  const fillers = Array.from({ length: 62 }, (_, r) => (alphabet.slice(r) + alphabet.slice(0, r)).repeat(8).slice(0, 493));
  const records = mib * 2048;
  const bytes = new Uint8Array(records * 512);
  for (let i = 0; i < records; i++) {
    const record = `viommu-${tag} ${i.toString(16).padStart(8, '0')} ${fillers[i % 62]}\n`;
    for (let c = 0; c < 512; c++) bytes[i * 512 + c] = record.charCodeAt(c);
  }
  return bytes;
}

export function md5(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex');
}
