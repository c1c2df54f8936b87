// Unpacking Debian packages without dpkg (a .deb is an ar archive whose data.tar.* holds the
// files), and the file-tree helpers the guest build needs. Plain Node, tar for the archives.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** A build step that failed for a reason the user can act on (advice: say how to build elsewhere). */
export class Failure extends Error {}
export function fail(what, advice = true) {
  throw Object.assign(new Failure(what), { advice });
}

// A .deb is an ar archive; its data.tar.* member holds the files.
function debDataMember(file) {
  const b = fs.readFileSync(file);
  if (b.subarray(0, 8).toString('latin1') !== '!<arch>\n') fail(`${path.basename(file)} is not a .deb (ar) file`);
  for (let off = 8; off + 60 <= b.length; ) {
    const name = b
      .subarray(off, off + 16)
      .toString('latin1')
      .trim()
      .replace(/\/$/, '');
    const size = Number(
      b
        .subarray(off + 48, off + 58)
        .toString('latin1')
        .trim(),
    );
    const data = b.subarray(off + 60, off + 60 + size);
    if (name.startsWith('data.tar')) return { name, data };
    off += 60 + size + (size & 1);
  }
  fail(`${path.basename(file)} has no data.tar member`);
}

// Extracts the members matching `patterns` (GNU tar wildcards) of a .deb into `dir`.
export function extract(file, dir, patterns) {
  const { name, data } = debDataMember(file);
  const z = name.endsWith('.xz') ? ['-J'] : name.endsWith('.zst') ? ['--zstd'] : name.endsWith('.gz') ? ['-z'] : [];
  fs.mkdirSync(dir, { recursive: true });
  return new Promise((resolve, reject) => {
    const tar = spawn('tar', ['-x', ...z, '-f', '-', '-C', dir, '--wildcards', ...patterns], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    tar.stderr.on('data', (d) => {
      err += d;
    });
    tar.on('error', (e) => reject(new Failure(`tar could not be run (${e.code ?? e.message})`)));
    tar.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(
            Object.assign(new Failure(`unpacking ${path.basename(file)} failed (tar exit ${code}):\n  ${err.trim().split('\n').slice(-4).join('\n  ')}`), {
              advice: true,
            }),
          ),
    );
    tar.stdin.on('error', () => {});
    tar.stdin.end(data);
  });
}

export function findFile(dir, base) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      const r = findFile(p, base);
      if (r) return r;
    } else if (e.name === base) return p;
  }
  return null;
}

export function setTimes(dir, epoch) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) setTimes(p, epoch);
    if (!e.isSymbolicLink()) fs.utimesSync(p, epoch, epoch);
  }
  fs.utimesSync(dir, epoch, epoch);
}

export function listTree(dir, rel = '.') {
  const out = [rel];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const r = `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...listTree(dir, r));
    else out.push(r);
  }
  return out;
}
