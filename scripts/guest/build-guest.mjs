#!/usr/bin/env node
// Builds the Linux guest that boots in v86 for viommu's emulator runs:
//   .guest/bzImage      Debian bookworm's i386 kernel (linux-image-6.1.0-*-686-unsigned, newest in the lists)
//   .guest/initrd.gz    busybox (busybox-static:i386) + nvme.ko and its dependencies + scripts/guest/init.sh as /init
//   .guest/bios.bin     SeaBIOS (package seabios)
//   .guest/vgabios.bin  SeaBIOS's vgabios-isavga.bin
//   .guest/manifest.json  packages and versions, file sizes and sha256
//
// Usage: node scripts/guest/build-guest.mjs [--refresh] [--force]
//   (no flag)  does nothing when the manifest matches the files and the current init.sh
//   --refresh  asks the package lists again for the newest kernel / busybox / seabios and rebuilds if they changed
//   --force    rebuilds whatever the manifest says
//
// Packages come from apt-get download (nothing is installed but cpio, if it is missing). On a machine
// without Debian's apt: download the three .deb files by hand, put them in a folder and set
// VIOMMU_GUEST_DIR to that folder; the guest is then built there from those files (needs tar, xz, cpio, gzip).
// Tools that boot the guest read it from VIOMMU_GUEST_DIR when set, otherwise from .guest/.
//
// Plain Node (>= 20), no dependencies beyond Node's built-ins.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { extract, Failure, fail, findFile, listTree, setTimes } from './deb-files.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const FROM_ENV = Boolean(process.env.VIOMMU_GUEST_DIR);
const OUT = FROM_ENV ? path.resolve(process.env.VIOMMU_GUEST_DIR) : path.join(ROOT, '.guest');
const INIT = path.join(HERE, 'init.sh');
const MANIFEST = path.join(OUT, 'manifest.json');

// Bump when the recipe (what goes into the outputs) changes, so that old builds are redone.
const RECIPE = 1;
const KERNEL_RE = /^linux-image-6\.1\.0-(\d+)-686-unsigned$/;
// insmod order (dependencies first); the file names inside the kernel package, without .ko.
const MODULES = ['crct10dif_common', 'crct10dif_generic', 'crc-t10dif', 'crc64', 'crc64-rocksoft', 'crc64_rocksoft_generic', 't10-pi', 'nvme-core', 'nvme'];
const OUTPUTS = ['bzImage', 'initrd.gz', 'bios.bin', 'vgabios.bin'];
// Fixed mtime for everything packed into the initramfs, so the same inputs give the same initrd.gz.
const EPOCH = 1_000_000_000;

const argv = new Set(process.argv.slice(2));
const USAGE = 'usage: node scripts/guest/build-guest.mjs [--refresh] [--force]';
for (const a of argv) {
  if (!['--refresh', '--force', '--help', '-h'].includes(a)) {
    console.error(`guest: unknown option ${a}\n${USAGE}`);
    process.exit(2);
  }
}
if (argv.has('--help') || argv.has('-h')) {
  console.log(USAGE);
  process.exit(0);
}

const say = (s) => console.log(`guest: ${s}`);

function run(cmd, args, { cwd, input, env, quiet = true } = {}) {
  const r = spawnSync(cmd, args, {
    cwd,
    input,
    env: { ...process.env, ...env },
    maxBuffer: 512 << 20,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (r.error) fail(`${cmd} could not be run (${r.error.code ?? r.error.message})`);
  if (!quiet) process.stdout.write(r.stdout);
  return r;
}

function runOk(cmd, args, opts) {
  const r = run(cmd, args, opts);
  if (r.status !== 0) {
    const tail = `${r.stderr}`.trim().split('\n').slice(-6).join('\n  ');
    fail(`\`${cmd} ${args.join(' ')}\` exited with ${r.status ?? r.signal}${tail ? `:\n  ${tail}` : ''}`);
  }
  return r;
}

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');
const fileInfo = (p) => {
  const b = fs.readFileSync(p);
  return { size: b.length, sha256: sha256(b) };
};

function readManifest() {
  try {
    return JSON.parse(fs.readFileSync(MANIFEST, 'utf8'));
  } catch {
    return null;
  }
}

// Whether the outputs on disk are the ones the manifest describes, built from the current init.sh and recipe.
function manifestMatches(m) {
  if (!m || m.recipe !== RECIPE || m.init?.sha256 !== fileInfo(INIT).sha256) return false;
  if (JSON.stringify(m.modules) !== JSON.stringify(MODULES)) return false;
  for (const f of OUTPUTS) {
    const want = m.files?.[f];
    const p = path.join(OUT, f);
    if (!want || !fs.existsSync(p)) return false;
    const got = fileInfo(p);
    if (got.size !== want.size || got.sha256 !== want.sha256) return false;
  }
  return true;
}

// ---------------------------------------------------------------- package selection

function candidate(spec) {
  const r = runOk('apt-cache', ['policy', spec]);
  const m = /Candidate:\s*(\S+)/.exec(`${r.stdout}`);
  return m && m[1] !== '(none)' ? m[1] : null;
}

function resolveWithApt() {
  const names = `${runOk('apt-cache', ['search', '--names-only', '^linux-image-6\\.1\\.0-[0-9]+-686-unsigned$']).stdout}`
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => KERNEL_RE.test(n));
  names.sort((a, b) => Number(KERNEL_RE.exec(b)[1]) - Number(KERNEL_RE.exec(a)[1]));
  for (const name of names) {
    const version = candidate(`${name}:i386`);
    if (!version) continue;
    const busybox = candidate('busybox-static:i386');
    const seabios = candidate('seabios');
    if (!busybox || !seabios) return null;
    return {
      kernel: { name, arch: 'i386', version },
      busybox: { name: 'busybox-static', arch: 'i386', version: busybox },
      seabios: { name: 'seabios', arch: 'all', version: seabios },
    };
  }
  return null;
}

const debName = (p) => `${p.name}_${p.version.replace(/:/g, '%3a')}_${p.arch}.deb`;

function aptUpdate() {
  say('apt-get update (this takes a while once)');
  runOk('apt-get', ['update'], { env: { DEBIAN_FRONTEND: 'noninteractive' } });
}

// Picks the packages from the package lists and downloads them into OUT/debs.
function fetchWithApt() {
  for (const tool of ['apt-get', 'apt-cache', 'dpkg']) if (!has(tool)) fail(`${tool} is not available`);
  let updated = false;
  if (!`${runOk('dpkg', ['--print-foreign-architectures']).stdout}`.split('\n').includes('i386')) {
    if (process.getuid?.() !== 0) fail('the i386 architecture must be added (dpkg --add-architecture i386), which needs root');
    say('dpkg --add-architecture i386');
    runOk('dpkg', ['--add-architecture', 'i386']);
    aptUpdate();
    updated = true;
  }
  let pkgs = resolveWithApt();
  if (!pkgs && !updated) {
    aptUpdate();
    updated = true;
    pkgs = resolveWithApt();
  }
  if (!pkgs) fail('no linux-image-6.1.0-*-686-unsigned:i386, busybox-static:i386 or seabios in the package lists');
  say(
    `packages: ${Object.values(pkgs)
      .map((p) => `${p.name}:${p.arch} ${p.version}`)
      .join(', ')}`,
  );

  const dir = path.join(OUT, 'debs');
  fs.mkdirSync(dir, { recursive: true });
  for (const p of Object.values(pkgs)) {
    const file = path.join(dir, debName(p));
    if (fs.existsSync(file)) continue;
    say(`apt-get download ${p.name}:${p.arch}=${p.version}`);
    const r = run('apt-get', ['download', `${p.name}:${p.arch}=${p.version}`], { cwd: dir });
    if (r.status !== 0 && !updated) {
      // The lists may be older than the mirror: refresh them once and try again.
      aptUpdate();
      updated = true;
      return fetchWithApt();
    }
    if (r.status !== 0) fail(`apt-get download ${p.name}:${p.arch}=${p.version} failed:\n  ${`${r.stderr}`.trim().split('\n').slice(-4).join('\n  ')}`);
    if (!fs.existsSync(file)) fail(`apt-get download did not leave ${debName(p)}`);
  }
  // Drop older downloads of the same packages.
  const keep = new Set(Object.values(pkgs).map(debName));
  for (const f of fs.readdirSync(dir)) {
    if (f.endsWith('.deb') && !keep.has(f) && Object.values(pkgs).some((p) => f.startsWith(`${p.name}_`))) {
      fs.rmSync(path.join(dir, f));
    }
  }
  for (const p of Object.values(pkgs)) p.file = path.join(dir, debName(p));
  return pkgs;
}

// Without apt: the .deb files put by hand in VIOMMU_GUEST_DIR (or its debs/ folder).
function findLocalDebs() {
  const found = {};
  for (const dir of [OUT, path.join(OUT, 'debs')]) {
    if (!fs.existsSync(dir)) continue;
    for (const f of fs.readdirSync(dir)) {
      const m = /^([^_]+)_([^_]+)_([^_]+)\.deb$/.exec(f);
      if (!m) continue;
      const p = { name: m[1], version: decodeURIComponent(m[2]), arch: m[3], file: path.join(dir, f) };
      const k = KERNEL_RE.exec(p.name);
      const role = k && p.arch === 'i386' ? 'kernel' : p.name === 'busybox-static' && p.arch === 'i386' ? 'busybox' : p.name === 'seabios' ? 'seabios' : null;
      if (!role) continue;
      const prev = found[role];
      const newer =
        !prev ||
        (role === 'kernel' && Number(k[1]) > Number(KERNEL_RE.exec(prev.name)[1])) ||
        (prev.name === p.name && p.version.localeCompare(prev.version, 'en', { numeric: true }) > 0);
      if (newer) found[role] = p;
    }
  }
  return found.kernel && found.busybox && found.seabios ? found : null;
}

// The packages of the previous build, when their .deb files are still there unchanged (no apt needed).
function debsFromManifest(m) {
  if (!m?.packages || m.recipe !== RECIPE) return null;
  const pkgs = {};
  for (const role of ['kernel', 'busybox', 'seabios']) {
    const p = m.packages[role];
    if (!p) return null;
    const file = [path.join(OUT, 'debs', p.deb), path.join(OUT, p.deb)].find((f) => fs.existsSync(f));
    if (!file || fileInfo(file).sha256 !== p.debSha256) return null;
    pkgs[role] = { name: p.name, arch: p.arch, version: p.version, file };
  }
  return pkgs;
}

// ---------------------------------------------------------------- build

async function build(pkgs) {
  const work = path.join(OUT, `work-${process.pid}`);
  fs.rmSync(work, { recursive: true, force: true });
  try {
    say(`unpacking ${pkgs.kernel.name} (kernel and ${MODULES.length} modules)`);
    await extract(pkgs.kernel.file, path.join(work, 'kernel'), ['./boot/vmlinuz-*', ...MODULES.map((m) => `./lib/modules/*/${m}.ko`)]);
    say(`unpacking ${pkgs.busybox.name} and ${pkgs.seabios.name}`);
    await extract(pkgs.busybox.file, path.join(work, 'busybox'), ['./bin/busybox']);
    await extract(pkgs.seabios.file, path.join(work, 'seabios'), ['./usr/share/seabios/bios.bin', './usr/share/seabios/vgabios-isavga.bin']);

    const boot = path.join(work, 'kernel', 'boot');
    const vmlinuz = fs.readdirSync(boot).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) fail(`no boot/vmlinuz-* in ${pkgs.kernel.name}`);
    const release = vmlinuz.slice('vmlinuz-'.length);

    // initramfs tree
    const root = path.join(work, 'initramfs');
    for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'lib/mods']) fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.copyFileSync(path.join(work, 'busybox', 'bin', 'busybox'), path.join(root, 'bin', 'busybox'));
    fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
    fs.copyFileSync(INIT, path.join(root, 'init'));
    fs.chmodSync(path.join(root, 'init'), 0o755);
    for (const m of MODULES) {
      const src = findFile(path.join(work, 'kernel', 'lib', 'modules'), `${m}.ko`);
      if (!src) fail(`module ${m}.ko not found in ${pkgs.kernel.name}`);
      fs.copyFileSync(src, path.join(root, 'lib', 'mods', `${m}.ko`));
    }
    fs.writeFileSync(path.join(root, 'lib', 'mods', 'order'), `${MODULES.join('\n')}\n`);
    // /dev/console, so that /init has its stdin/stdout before devtmpfs is mounted (needs root; init.sh copes without).
    spawnSync('mknod', ['-m', '600', path.join(root, 'dev', 'console'), 'c', '5', '1'], { stdio: 'ignore' });
    setTimes(root, EPOCH);

    if (!has('cpio')) {
      if (!has('apt-get') || process.getuid?.() !== 0) fail('the cpio command is missing (install cpio)');
      say('apt-get install cpio');
      runOk('apt-get', ['install', '-y', '--no-install-recommends', 'cpio'], { env: { DEBIAN_FRONTEND: 'noninteractive' } });
    }
    say('packing initrd.gz (cpio newc + gzip)');
    const list = `${listTree(root).join('\n')}\n`;
    const cpio = runOk('cpio', ['-o', '-H', 'newc', '-R', '0:0', '--reproducible', '--quiet'], { cwd: root, input: list }).stdout;
    const gz = runOk('gzip', ['-9', '-n', '-c'], { input: cpio }).stdout;

    fs.writeFileSync(path.join(OUT, 'initrd.gz'), gz);
    fs.copyFileSync(path.join(boot, vmlinuz), path.join(OUT, 'bzImage'));
    fs.copyFileSync(path.join(work, 'seabios', 'usr', 'share', 'seabios', 'bios.bin'), path.join(OUT, 'bios.bin'));
    fs.copyFileSync(path.join(work, 'seabios', 'usr', 'share', 'seabios', 'vgabios-isavga.bin'), path.join(OUT, 'vgabios.bin'));

    const manifest = {
      recipe: RECIPE,
      builtBy: 'scripts/guest/build-guest.mjs',
      builtAt: new Date().toISOString(),
      kernelRelease: release,
      packages: Object.fromEntries(
        Object.entries(pkgs).map(([role, p]) => [
          role,
          {
            name: p.name,
            arch: p.arch,
            version: p.version,
            deb: path.basename(p.file),
            debSha256: fileInfo(p.file).sha256,
          },
        ]),
      ),
      modules: MODULES,
      init: { source: 'scripts/guest/init.sh', sha256: fileInfo(INIT).sha256 },
      initramfs: { files: list.trim().split('\n').length, cpioBytes: cpio.length },
      files: Object.fromEntries(OUTPUTS.map((f) => [f, fileInfo(path.join(OUT, f))])),
    };
    fs.writeFileSync(MANIFEST, `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const samePackages = (m, pkgs) =>
  Boolean(m) && Object.entries(pkgs).every(([role, p]) => m.packages?.[role]?.name === p.name && m.packages[role].version === p.version);

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  const old = readManifest();
  const force = argv.has('--force');
  const displayOut = FROM_ENV ? OUT : path.relative(process.cwd(), OUT) || '.';

  if (!force && !argv.has('--refresh') && manifestMatches(old)) {
    say(`up to date in ${displayOut} (${old.packages.kernel.name} ${old.packages.kernel.version}); nothing to do`);
    return;
  }
  const local = findLocalDebs();
  const kept = argv.has('--refresh') ? null : debsFromManifest(old);
  let pkgs;
  if (kept) {
    say('reusing the .deb files named in the manifest (--refresh asks the package lists again)');
    pkgs = kept;
  } else if (FROM_ENV && local && (!has('apt-get') || !argv.has('--refresh'))) {
    say(`using the .deb files in ${OUT}`);
    pkgs = local;
  } else {
    pkgs = fetchWithApt();
  }
  if (!force && samePackages(old, pkgs) && manifestMatches(old)) {
    say(`up to date in ${displayOut} (${pkgs.kernel.name} ${pkgs.kernel.version}); nothing to do`);
    return;
  }
  const t0 = performance.now();
  const m = await build(pkgs);
  say(
    `built in ${displayOut} in ${((performance.now() - t0) / 1000).toFixed(1)} s: kernel ${m.kernelRelease}, ` +
      OUTPUTS.map((f) => `${f} ${m.files[f].size} B`).join(', '),
  );
}

main().catch((e) => {
  if (!(e instanceof Failure)) throw e;
  console.error(`guest: FAILED: ${e.message}`);
  if (e.advice !== false) {
    console.error(`guest: The guest needs Debian bookworm's packages linux-image-6.1.0-<N>-686-unsigned (i386),
guest: busybox-static (i386) and seabios (all). Where Debian's apt is not available (or the failure
guest: above cannot be fixed), download those three .deb files by hand (e.g. from a Debian mirror's
guest: pool/main/l/linux, pool/main/b/busybox, pool/main/s/seabios), put them in one folder, and run
guest:   VIOMMU_GUEST_DIR=<that folder> node scripts/guest/build-guest.mjs
guest: which builds the guest there (needs tar, xz, cpio and gzip). Programs that boot the guest read
guest: bzImage, initrd.gz, bios.bin and vgabios.bin from VIOMMU_GUEST_DIR when it is set.`);
  }
  process.exit(1);
});
