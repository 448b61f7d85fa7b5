// `npm run build` (and the buildpack's `npm run gcp-build`): the production entry point.
//  - dist/bundle/: src/ bundled by esbuild into one ESM file plus chunks for what only some
//    configs load (the Container API client and its gRPC stack, for `gke` clusters), with
//    source maps. Loading one file instead of ~1 500 is most of the cold-start gain (perf notes).
//  - dist/index.mjs: package.json's "main". It turns on Node's compile cache
//    (dist/compile-cache, portable: keyed by paths relative to it) before loading the bundle.
//  - dist/compile-cache/: V8 code for every module, made here by loading them once, so a
//    new instance skips compiling them. Node keys it by its version and V8 flags, so it is
//    made with service.yaml's NODE_OPTIONS (the heap cap) and the pinned Node.
// functions-framework stays outside the bundle: its CLI registers the function in the
// copy of the library it loads itself, and `ff.http` must reach that same copy.
// A CommonJS module loaded with import() gets a facade (lazyCommonJs below), so its chunk
// has the named exports Node's loader gives it; dist/bundle/lazy-commonjs.json lists them
// for test/bundle.test.ts.
import { execFileSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type BuildOptions, type Plugin } from 'esbuild';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = path.join(root, 'dist');

/**
 * Node's loader gives `import()` of a CommonJS module its named exports (found by static
 * analysis) beside `default` (module.exports). In a split ESM bundle esbuild gives that
 * module's chunk `default` alone (evanw/esbuild#3245: ESM output cannot express run-time
 * exports), so `const { PubSub } = await import('@google-cloud/pubsub')` finds nothing,
 * in our code and inside libraries alike (gaxios imports https-proxy-agent so). This puts a
 * facade between every import() and a CommonJS module: it requires the module (the one
 * copy the rest of the bundle shares) and exports, by name, exactly what Node's own import
 * of the same file gives, asked of Node here. One fix for every lazy import, present and
 * later, instead of a helper every call site has to remember.
 */
const FACADE = 'lazy-commonjs';
const lazyCommonJs: Plugin = {
  name: FACADE,
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.kind !== 'dynamic-import' || args.pluginData === FACADE) return undefined;
      const resolved = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: FACADE });
      if (resolved.errors.length > 0 || resolved.external || resolved.namespace !== 'file') return undefined;
      const ns = (await import(pathToFileURL(resolved.path).href)) as Record<string, unknown>;
      // Node marks a CommonJS namespace with this name; an ES module keeps its own exports.
      if (!('module.exports' in ns)) return undefined;
      return { path: resolved.path, namespace: FACADE, pluginData: Object.keys(ns) };
    });
    b.onLoad({ filter: /.*/, namespace: FACADE }, (args) => {
      const names = (args.pluginData as string[]).filter((n) => n !== 'default');
      const lines = [`const m = require(${JSON.stringify(args.path)});`, 'export default m;'];
      names.forEach((n, i) => lines.push(`const e${i} = ${n === 'module.exports' ? 'm' : `m[${JSON.stringify(n)}]`};`, `export { e${i} as ${JSON.stringify(n)} };`));
      return { contents: lines.join('\n'), loader: 'js', resolveDir: path.dirname(args.path) };
    });
  },
};

/**
 * The Container API v1 client parses its `protos.json` on construction: v1 and v1beta1 both,
 * though v1 never references v1beta1. The bundled copy keeps v1 alone. It fails the build
 * loudly if the file no longer has the shape this relies on (a library update), rather than
 * ship a descriptor set the client cannot use.
 */
const CONTAINER_PROTOS = /[\\/]@google-cloud[\\/]container[\\/]build[\\/]protos[\\/]protos\.json$/;
const containerV1Protos: Plugin = {
  name: 'container-v1-protos',
  setup(b) {
    b.onLoad({ filter: CONTAINER_PROTOS }, async (args) => {
      const json = JSON.parse(await readFile(args.path, 'utf8')) as { nested?: { google?: { nested?: { container?: { nested?: Record<string, unknown> } } } } };
      const versions = json.nested?.google?.nested?.container?.nested;
      if (!versions || Object.keys(versions).sort().join(',') !== 'v1,v1beta1') {
        throw new Error(`${args.path}: expected google.container.{v1, v1beta1}, found ${versions ? Object.keys(versions).join(', ') : 'no google.container'}; review the container-v1-protos step of scripts/build.ts`);
      }
      delete versions.v1beta1;
      const text = JSON.stringify(json);
      if (text.includes('v1beta1')) throw new Error(`${args.path}: google.container.v1 refers to v1beta1; review the container-v1-protos step of scripts/build.ts`);
      return { contents: text, loader: 'json' };
    });
  },
};

/**
 * @grpc/proto-loader builds, for every message and enum of a package, a descriptor object and
 * the encoded descriptor of every file (`type`, `fileDescriptorProtos`): only gRPC server
 * reflection reads them; a client uses `format` and the (de)serializers. The bundled copy
 * builds them on first read instead (about 90 ms of the Container API client's construction).
 * Each edit must apply exactly once, or the build fails: a changed library is reviewed, not
 * shipped half-patched. (Worth proposing upstream.)
 */
const PROTO_LOADER = /[\\/]@grpc[\\/]proto-loader[\\/]build[\\/]src[\\/]index\.js$/;
const PROTO_LOADER_EDITS: [string, string][] = [
  [
    `function createMessageDefinition(message, options, fileDescriptors) {
    const messageDescriptor = message.toDescriptor('proto3');
    return {
        format: 'Protocol Buffer 3 DescriptorProto',
        type: messageDescriptor.$type.toObject(messageDescriptor, descriptorOptions),
        fileDescriptorProtos: fileDescriptors,
        serialize: createSerializer(message),
        deserialize: createDeserializer(message, options)
    };
}`,
    `function createMessageDefinition(message, options, fileDescriptors) {
    return lazyReflection({
        format: 'Protocol Buffer 3 DescriptorProto',
        serialize: createSerializer(message),
        deserialize: createDeserializer(message, options)
    }, () => { const messageDescriptor = message.toDescriptor('proto3'); return messageDescriptor.$type.toObject(messageDescriptor, descriptorOptions); }, fileDescriptors);
}
function lazyReflection(definition, type, fileDescriptors) {
    let built;
    Object.defineProperty(definition, 'type', { enumerable: true, configurable: true, get: () => (built ??= type()) });
    Object.defineProperty(definition, 'fileDescriptorProtos', { enumerable: true, configurable: true, get: fileDescriptors });
    return definition;
}`,
  ],
  [
    `function createEnumDefinition(enumType, fileDescriptors) {
    const enumDescriptor = enumType.toDescriptor('proto3');
    return {
        format: 'Protocol Buffer 3 EnumDescriptorProto',
        type: enumDescriptor.$type.toObject(enumDescriptor, descriptorOptions),
        fileDescriptorProtos: fileDescriptors,
    };
}`,
    `function createEnumDefinition(enumType, fileDescriptors) {
    return lazyReflection({
        format: 'Protocol Buffer 3 EnumDescriptorProto',
    }, () => { const enumDescriptor = enumType.toDescriptor('proto3'); return enumDescriptor.$type.toObject(enumDescriptor, descriptorOptions); }, fileDescriptors);
}`,
  ],
  [
    `    const descriptorList = root.toDescriptor('proto3').file;
    const bufferList = descriptorList.map(value => Buffer.from(descriptor.FileDescriptorProto.encode(value).finish()));`,
    `    let files;
    const bufferList = () => (files ??= root.toDescriptor('proto3').file.map(value => Buffer.from(descriptor.FileDescriptorProto.encode(value).finish())));`,
  ],
];
/**
 * A plugin that edits one library file as it is bundled. Each edit must apply exactly once,
 * or the build fails: a changed library is reviewed, not shipped half-patched.
 */
function exactEdits(name: string, filter: RegExp, edits: [string, string][]): Plugin {
  return {
    name,
    setup(b) {
      b.onLoad({ filter }, async (args) => {
        let text = await readFile(args.path, 'utf8');
        for (const [from, to] of edits) {
          const at = text.indexOf(from);
          if (at < 0 || text.indexOf(from, at + 1) >= 0) {
            throw new Error(`${args.path}: the ${name} edit starting "${from.split('\n')[0]}" no longer applies exactly once; review it in scripts/build.ts`);
          }
          text = text.slice(0, at) + to + text.slice(at + from.length);
        }
        return { contents: text, loader: 'js' };
      });
    },
  };
}
const lazyProtoReflection = exactEdits('lazy-proto-reflection', PROTO_LOADER, PROTO_LOADER_EDITS);

/**
 * client-node's default transport imports undici's fetch() at the top of its module, and
 * esbuild keeps that module in the main bundle (the object API reaches it through the
 * generated index), so every cold start ran undici's index: fetch, WebSocket, caches,
 * HTTP/2, ~60 ms (issue 23). The function never sends through it (src/cluster/client.ts
 * uses undici's Agent and request modules); the edit requires undici where fetch() is called.
 */
const lazyClientNodeFetch = exactEdits('lazy-client-node-fetch', /[\\/]@kubernetes[\\/]client-node[\\/]dist[\\/]gen[\\/]http[\\/]isomorphic-fetch\.js$/, [
  ["import { fetch } from 'undici';\n", ''],
  ['const resultPromise = fetch(', "const resultPromise = require('undici').fetch("],
]);

/**
 * google-gax's index loads, for every client, what only some use: the generated protobuf
 * classes of IAM, Locations and long-running operations, the IAM and Locations clients
 * (their JSON descriptors) and the REST transport (`fallback`, with node-fetch). The
 * Container API v1 client over gRPC uses none of them. The edits make each a getter that
 * requires its module on first read (as the index already does for most of its exports).
 */
const GAX_INDEX = /[\\/]google-gax[\\/]build[\\/]src[\\/]index\.js$/;
const lazyGaxExtras = exactEdits('lazy-gax-extras', GAX_INDEX, [
  [
    `const IamProtos = __importStar(require("../protos/iam_service"));
exports.IamProtos = IamProtos;
const LocationProtos = __importStar(require("../protos/locations"));
exports.LocationProtos = LocationProtos;
const operationsProtos = __importStar(require("../protos/operations"));
exports.operationsProtos = operationsProtos;
`,
    `const lazyExport = (name, load) => { let m; Object.defineProperty(exports, name, { enumerable: true, configurable: true, get: () => (m ??= load()) }); };
lazyExport("IamProtos", () => __importStar(require("../protos/iam_service")));
lazyExport("LocationProtos", () => __importStar(require("../protos/locations")));
lazyExport("operationsProtos", () => __importStar(require("../protos/operations")));
`,
  ],
  [
    `var iamService_1 = require("./iamService");
Object.defineProperty(exports, "IamClient", { enumerable: true, get: function () { return iamService_1.IamClient; } });
var locationService_1 = require("./locationService");
Object.defineProperty(exports, "LocationsClient", { enumerable: true, get: function () { return locationService_1.LocationsClient; } });
`,
    `Object.defineProperty(exports, "IamClient", { enumerable: true, get: function () { return require("./iamService").IamClient; } });
Object.defineProperty(exports, "LocationsClient", { enumerable: true, get: function () { return require("./locationService").LocationsClient; } });
`,
  ],
  [
    `const fallback = __importStar(require("./fallback"));
exports.fallback = fallback;
exports.protobufFromJSON = fallback.protobufFromJSON;
`,
    `lazyExport("fallback", () => __importStar(require("./fallback")));
Object.defineProperty(exports, "protobufFromJSON", { enumerable: true, get: () => exports.fallback.protobufFromJSON });
`,
  ],
]);
// Two modules every client loads reach the REST transport for one function or constant each.
const lazyGaxErrorFallback = exactEdits('lazy-gax-extras', /[\\/]google-gax[\\/]build[\\/]src[\\/]googleError\.js$/, [
  ['const fallback_1 = require("./fallback");', 'const fallback_1 = { get defaultToObjectOptions() { return require("./fallback").defaultToObjectOptions; } };'],
]);
const lazyGaxUploadFallback = exactEdits('lazy-gax-extras', /[\\/]google-gax[\\/]build[\\/]src[\\/]resumableUpload\.js$/, [
  ['const fallbackRest_1 = require("./fallbackRest");', 'const fallbackRest_1 = { decodeResponse: (...args) => require("./fallbackRest").decodeResponse(...args) };'],
]);

/**
 * Node's built-ins by `require()`, not ESM `import`: an ESM import of a built-in builds its
 * module facade, which reads every export, getters included (`node:http`'s loads Node's
 * internal undici, ~40 ms of a cold start, issue 23). A small CommonJS stand-in requires the
 * built-in instead (through the banner's `require`), and the importers read its properties.
 */
const BUILTINS = new Set(builtinModules);
const builtinsByRequire: Plugin = {
  name: 'builtins-by-require',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z_]+(\/[a-z_]+)?$/ }, (args) => {
      const name = args.path.replace(/^node:/, '');
      if (args.kind !== 'import-statement' || !BUILTINS.has(name)) return undefined;
      return { path: `node:${name}`, namespace: 'builtin-require' };
    });
    b.onLoad({ filter: /.*/, namespace: 'builtin-require' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

await rm(dist, { recursive: true, force: true });
/** What both bundles share: the function's (dist/bundle/) and the CLI's (dist/cli/). */
const bundling = {
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  sourcemap: true,
  // Names stay readable in stack traces and logs (`err.name`, class names in messages);
  // identifiers are not mangled, and the source maps map what is left back to src/.
  keepNames: true,
  minifyWhitespace: true,
  minifySyntax: true,
  // CommonJS libraries inside an ESM bundle still call require() for Node's built-ins,
  // and google-gax computes a (here unused) proto folder from __dirname at load time.
  banner: {
    js: [
      "import { createRequire as __createRequire } from 'node:module';",
      "import { fileURLToPath as __fileURLToPath } from 'node:url';",
      'const require = __createRequire(import.meta.url);',
      'const __filename = __fileURLToPath(import.meta.url);',
      "const __dirname = __fileURLToPath(new URL('.', import.meta.url));",
    ].join(' '),
  },
  plugins: [lazyCommonJs, builtinsByRequire, containerV1Protos, lazyProtoReflection, lazyClientNodeFetch, lazyGaxExtras, lazyGaxErrorFallback, lazyGaxUploadFallback],
  logLevel: 'warning',
} satisfies BuildOptions;
const { metafile } = await build({
  ...bundling,
  entryPoints: { index: path.join(root, 'src/index.ts') },
  outdir: path.join(dist, 'bundle'),
  external: ['@google-cloud/functions-framework'],
  metafile: true,
});
// The CLI as an installed package runs it (bin/gke-deployer.mjs): Node strips no types under
// node_modules. No compile cache: it is not on a cold-start path.
await build({ ...bundling, entryPoints: { 'gke-deployer': path.join(root, 'src/cli/main.ts') }, outdir: path.join(dist, 'cli') });
// The Container API's generated message classes (protos.js, 6 MB) are dead weight for the
// gRPC client: src/cluster/container-api.ts imports the v1 client alone so they stay out.
const deadWeight = Object.keys(metafile.inputs).filter((f) => /@google-cloud[\\/]container[\\/]build[\\/](protos[\\/]protos\.js$|src[\\/]v1beta1[\\/])/.test(f));
if (deadWeight.length > 0) throw new Error(`the bundle includes ${deadWeight.join(', ')}: import the Container API v1 client alone (src/cluster/container-api.ts)`);
// Each facade's chunk and the module behind it (test/bundle.test.ts compares their exports).
const facades = Object.entries(metafile.outputs).flatMap(([out, o]) =>
  o.entryPoint?.startsWith(`${FACADE}:`) ? [{ module: path.relative(root, o.entryPoint.slice(FACADE.length + 1)), chunk: path.basename(out) }] : [],
);
await writeFile(path.join(dist, 'bundle', 'lazy-commonjs.json'), `${JSON.stringify(facades, null, 2)}\n`);
await writeFile(
  path.join(dist, 'index.mjs'),
  `// Generated by scripts/build.ts: the compile cache first, then the bundle.
import { enableCompileCache } from 'node:module';
enableCompileCache({ directory: new URL('./compile-cache', import.meta.url).pathname, portable: true });
await import('./bundle/index.mjs');
`,
);

// The compile cache: load every module once with production's V8 flags, then exit (Node
// writes the cache on exit). A config with a static cluster needs no network.
const service = parse(await readFile(path.join(root, 'service.yaml'), 'utf8')) as {
  spec: { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } };
};
const nodeOptions = service.spec.template.spec.containers[0]?.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
const tmp = await mkdtemp(path.join(tmpdir(), 'gke-deployer-build-'));
await writeFile(path.join(tmp, 'ca.crt'), '');
await writeFile(path.join(tmp, 'token'), 'build');
await writeFile(
  path.join(tmp, 'deployer.yaml'),
  `auth: { direct: { audience: https://build.invalid/deploy, serviceAccounts: [build@build.invalid] } }
clusters: { c: { endpoint: { server: https://127.0.0.1:1, caFile: ca.crt, tokenFile: token } } }
targets: { t: { cluster: c, namespace: t, deployment: t, images: [example.com/t] } }
`,
);
const warm = `
import { readdir } from 'node:fs/promises';
import { flushCompileCache } from 'node:module';
await import('@google-cloud/functions-framework');
await import(${JSON.stringify(path.join(dist, 'index.mjs'))});
const chunks = await readdir(${JSON.stringify(path.join(dist, 'bundle'))});
for (const f of chunks.filter((f) => f.endsWith('.mjs'))) await import(${JSON.stringify(path.join(dist, 'bundle'))} + '/' + f);
flushCompileCache();
process.exit(0);
`;
execFileSync(process.execPath, ['--input-type=module', '-e', warm], {
  cwd: root,
  env: { ...process.env, NODE_OPTIONS: nodeOptions, DEPLOYER_CONFIG: path.join(tmp, 'deployer.yaml'), NODE_ENV: 'production' },
  stdio: ['ignore', 'ignore', 'inherit'],
});
await rm(tmp, { recursive: true, force: true });
console.log(`built ${path.relative(root, dist)}/ (bundle, compile cache; NODE_OPTIONS="${nodeOptions}")`);
