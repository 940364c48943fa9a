// as-pect unit tests of pure AssemblyScript logic (no host imports).
module.exports = {
  include: ["assembly/__tests__/**/*.spec.ts"],
  add: ["assembly/__tests__/**/*.include.ts"],
  flags: { "--runtime": ["full"] },
  disclude: [/node_modules/],
  imports(memory, createImports, instantiateSync, binary) {
    return instantiateSync(binary, createImports({}));
  },
  outputBinary: false,
  // as-pect 5's rtrace keeps a shadow map that does not follow memory.grow, so any growing array
  // reports false "shadow region mismatch" errors. The --debug build's refcount asserts still trap
  // on a double release.
  nortrace: true,
};
