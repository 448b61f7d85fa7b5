// A Cloud Run service as `gcloud run services replace` takes it: the Knative
// serving.knative.dev/v1 Service fields Cloud Run accepts, with Cloud Run's own limits
// (Cloud Run YAML reference). Strict objects: a misspelt field fails here, not at deploy.
import { z } from 'zod';

/** Annotation and label values must be strings in Cloud Run's API (a YAML `true` is refused). */
const stringMap = z.record(z.string(), z.string());
const dnsLabel = z.string().regex(/^[a-z]([-a-z0-9]*[a-z0-9])?$/);

const envVar = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
    value: z.string().optional(),
    valueFrom: z.strictObject({ secretKeyRef: z.strictObject({ name: dnsLabel, key: z.string().regex(/^(latest|\d+)$/) }) }).optional(),
  })
  .refine((e) => (e.value === undefined) !== (e.valueFrom === undefined), 'exactly one of value or valueFrom');

const probe = z
  .strictObject({
    httpGet: z.strictObject({ path: z.string().startsWith('/'), port: z.number().int().min(1).max(65535).optional() }).optional(),
    tcpSocket: z.strictObject({ port: z.number().int() }).optional(),
    grpc: z.strictObject({ port: z.number().int(), service: z.string().optional() }).optional(),
    initialDelaySeconds: z.number().int().min(0).max(240).optional(),
    periodSeconds: z.number().int().min(1).max(240).optional(),
    timeoutSeconds: z.number().int().min(1).max(240).optional(),
    failureThreshold: z.number().int().min(1).optional(),
  })
  .refine((p) => [p.httpGet, p.tcpSocket, p.grpc].filter(Boolean).length === 1, 'exactly one of httpGet, tcpSocket, grpc');

const container = z.strictObject({
  name: dnsLabel.optional(),
  image: z.string().min(1),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  ports: z.array(z.strictObject({ name: z.enum(['http1', 'h2c']).optional(), containerPort: z.number().int().min(1).max(65535) })).max(1).optional(),
  env: z.array(envVar).optional(),
  resources: z
    .strictObject({
      limits: z.strictObject({
        cpu: z.string().regex(/^(\d+|\d+m)$/),
        memory: z.string().regex(/^\d+(Mi|Gi)$/),
        'nvidia.com/gpu': z.string().optional(),
      }),
    })
    .optional(),
  volumeMounts: z.array(z.strictObject({ name: dnsLabel, mountPath: z.string().startsWith('/'), readOnly: z.boolean().optional() })).optional(),
  startupProbe: probe.optional(),
  livenessProbe: probe.optional(),
});

const volume = z.strictObject({
  name: dnsLabel,
  secret: z.strictObject({
    secretName: dnsLabel,
    items: z.array(z.strictObject({ key: z.string().regex(/^(latest|\d+)$/), path: z.string().min(1), mode: z.number().int().optional() })).optional(),
    defaultMode: z.number().int().optional(),
  }),
});

export const cloudRunService = z.strictObject({
  apiVersion: z.literal('serving.knative.dev/v1'),
  kind: z.literal('Service'),
  metadata: z.strictObject({
    // Cloud Run service names: up to 49 characters, a DNS label.
    name: dnsLabel.max(49),
    namespace: z.string().optional(),
    labels: stringMap.optional(),
    annotations: stringMap.optional(),
  }),
  spec: z.strictObject({
    template: z.strictObject({
      metadata: z.strictObject({ name: z.string().optional(), labels: stringMap.optional(), annotations: stringMap.optional() }).optional(),
      spec: z
        .strictObject({
          serviceAccountName: z.email(),
          containerConcurrency: z.number().int().min(1).max(1000),
          timeoutSeconds: z.number().int().min(1).max(3600),
          containers: z.array(container).min(1).max(10),
          volumes: z.array(volume).optional(),
        })
        // One ingress container: with sidecars, exactly one declares the port.
        .refine((s) => s.containers.length === 1 || s.containers.filter((c) => c.ports !== undefined).length === 1, 'exactly one container declares the port'),
    }),
    traffic: z.array(z.strictObject({ percent: z.number().int(), latestRevision: z.boolean().optional(), revisionName: z.string().optional() })).optional(),
  }),
});

export type CloudRunService = z.infer<typeof cloudRunService>;
