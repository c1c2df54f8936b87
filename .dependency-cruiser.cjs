/**
 * The layering of docs/architecture.md, kept by dependency-cruiser (`npm run check:deps`).
 * From the bottom: base/ < hardware/ < iommu/ < devices/ < workers/ < machine/. A module may
 * import its own layer and the layers below it, never a layer above; nothing inside the
 * package imports the package entry (machine/index.ts); there are no cycles.
 */
const LAYERS = ['base', 'hardware', 'iommu', 'devices', 'workers', 'machine'];
const SOURCES = `^(${LAYERS.join('|')})/`;

/** One rule per layer: nothing in it may import a layer above it. */
const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `no-upward-from-${layer}`,
  comment: `${layer}/ is layer ${i}: it may import only ${LAYERS.slice(0, i + 1).join(', ')} (see docs/architecture.md)`,
  severity: 'error',
  from: { path: `^${layer}/` },
  to: { path: `^(${LAYERS.slice(i + 1).join('|')})/` },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'iommu-sees-only-the-substrate-interface',
      comment: 'The IOMMU knows what a requester and physical memory are (hardware/substrate.ts), not the classes that implement them',
      severity: 'error',
      from: { path: '^iommu/' },
      to: { path: '^hardware/', pathNot: '^hardware/substrate[.]ts$' },
    },
    {
      name: 'iommu-imports-no-worker-model-or-driver',
      comment: 'The IOMMU proper imports nothing from workers/, device models or drivers',
      severity: 'error',
      from: { path: '^iommu/' },
      to: { path: '^(workers/|devices/models/|devices/drivers/)' },
    },
    {
      name: 'models-do-not-know-drivers',
      comment: 'A device model is the hardware: it never imports a driver',
      severity: 'error',
      from: { path: '^devices/models/' },
      to: { path: '^devices/drivers/' },
    },
    {
      name: 'no-package-entry-inside-the-package',
      comment: 'Modules of the package import concrete modules, never the package entry machine/index.ts',
      severity: 'error',
      from: { path: SOURCES },
      to: { path: '^machine/index[.]ts$' },
    },
    {
      name: 'no-circular',
      comment: 'Import cycles hide the layering and the order of module evaluation',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-orphans',
      comment: 'A module nothing imports and that imports nothing is dead (entry points import something)',
      severity: 'error',
      // Browser-test probe pages are loaded by URL, from a page of their own.
      from: { orphan: true, pathNot: ['[.]d[.]ts$', '(^|/)[.][^/]+[.](js|cjs|mjs|ts|json)$', '[.]mjs$', '^test/browser/pages/'] },
      to: {},
    },
    {
      name: 'not-to-unresolvable',
      comment: 'Every import must resolve',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-dev-dependency-in-the-package',
      comment: 'Code that ships may not import a devDependency',
      severity: 'error',
      from: { path: SOURCES },
      to: { dependencyTypes: ['npm-dev'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
