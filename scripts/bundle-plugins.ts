// The esbuild plugins of scripts/build.ts: what the production bundle changes in how the
// libraries load (issue 23), each failing the build if the library no longer has the shape it
// relies on. test/unit/bundle-plugins.test.ts checks the edits against the installed libraries.
import { builtinModules } from 'node:module';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Plugin } from 'esbuild';

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
export const FACADE = 'lazy-commonjs';
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
        throw new Error(`${args.path}: expected google.container.{v1, v1beta1}, found ${versions ? Object.keys(versions).join(', ') : 'no google.container'}; review the container-v1-protos step of scripts/bundle-plugins.ts`);
      }
      delete versions.v1beta1;
      const text = JSON.stringify(json);
      if (text.includes('v1beta1')) throw new Error(`${args.path}: google.container.v1 refers to v1beta1; review the container-v1-protos step of scripts/bundle-plugins.ts`);
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

/** One library file edited as it is bundled: its path under node_modules, and each edit. */
export interface LibraryEdit {
  name: string;
  file: string;
  edits: [from: string, to: string][];
}

/**
 * `text` (the file at `where`) with each edit applied. Each must apply exactly once, or this
 * throws: a changed library is reviewed, not shipped half-patched.
 */
export function applyEdits(text: string, edit: LibraryEdit, where: string): string {
  for (const [from, to] of edit.edits) {
    const at = text.indexOf(from);
    if (at < 0 || text.indexOf(from, at + 1) >= 0) {
      throw new Error(`${where}: the ${edit.name} edit starting "${from.split('\n')[0]}" no longer applies exactly once; review it in scripts/bundle-plugins.ts`);
    }
    text = text.slice(0, at) + to + text.slice(at + from.length);
  }
  return text;
}

/** A plugin that applies `edit` to every copy of its file the bundle loads. */
export function libraryEdit(edit: LibraryEdit): Plugin {
  const filter = new RegExp(`[\\\\/]node_modules[\\\\/]${edit.file.split('/').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[\\\\/]')}$`);
  return {
    name: edit.name,
    setup(b) {
      b.onLoad({ filter }, async (args) => ({ contents: applyEdits(await readFile(args.path, 'utf8'), edit, args.path), loader: 'js' }));
    },
  };
}

/** google-gax's index: see LIBRARY_EDITS. */
const GAX_INDEX_EDITS: [string, string][] = [
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
];

/**
 * The library edits (issue 23), besides proto-loader's above:
 *  - client-node's default transport imports undici's fetch() at the top of its module, and
 *    esbuild keeps that module in the main bundle (the object API reaches it through the
 *    generated index), so every cold start ran undici's index: fetch, WebSocket, caches,
 *    HTTP/2, ~60 ms. The function never sends through it (src/cluster/client.ts uses undici's
 *    Agent and request modules); the edit requires undici where fetch() is called.
 *  - google-gax's index loads, for every client, what only some use: the generated protobuf
 *    classes of IAM, Locations and long-running operations, the IAM and Locations clients
 *    (their JSON descriptors) and the REST transport (`fallback`, with node-fetch). The
 *    Container API v1 client over gRPC uses none of them. The edits make each a getter that
 *    requires its module on first read (as the index already does for most of its exports);
 *    two modules every client loads reach the REST transport for one function or constant
 *    each, and require it when they use it.
 */
export const LIBRARY_EDITS: LibraryEdit[] = [
  { name: 'lazy-proto-reflection', file: '@grpc/proto-loader/build/src/index.js', edits: PROTO_LOADER_EDITS },
  {
    name: 'lazy-client-node-fetch',
    file: '@kubernetes/client-node/dist/gen/http/isomorphic-fetch.js',
    edits: [
      ["import { fetch } from 'undici';\n", ''],
      ['const resultPromise = fetch(', "const resultPromise = require('undici').fetch("],
    ],
  },
  { name: 'lazy-gax-extras', file: 'google-gax/build/src/index.js', edits: GAX_INDEX_EDITS },
  {
    name: 'lazy-gax-extras',
    file: 'google-gax/build/src/googleError.js',
    edits: [
      ['const fallback_1 = require("./fallback");', 'const fallback_1 = { get defaultToObjectOptions() { return require("./fallback").defaultToObjectOptions; } };'],
    ],
  },
  {
    name: 'lazy-gax-extras',
    file: 'google-gax/build/src/resumableUpload.js',
    edits: [
      ['const fallbackRest_1 = require("./fallbackRest");', 'const fallbackRest_1 = { decodeResponse: (...args) => require("./fallbackRest").decodeResponse(...args) };'],
    ],
  },
];

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

/** Every plugin of the production bundle, in order. */
export const plugins: Plugin[] = [lazyCommonJs, builtinsByRequire, containerV1Protos, ...LIBRARY_EDITS.map(libraryEdit)];
