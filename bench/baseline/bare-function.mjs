// Baseline for cold start: a bare functions-framework function that does one raw SSA PATCH
// per request (BASELINE_SERVER, BASELINE_CA_FILE, BASELINE_TOKEN, BASELINE_NAMESPACE).
import { readFileSync } from 'node:fs';
import * as ff from '@google-cloud/functions-framework';
import { deployment, rawPatcher } from './raw-patch.mjs';

const env = process.env;
const raw = rawPatcher({ server: env.BASELINE_SERVER, ca: readFileSync(env.BASELINE_CA_FILE), token: env.BASELINE_TOKEN, namespace: env.BASELINE_NAMESPACE, manager: 'bench-bare' });

ff.http('deploy', async (req, res) => {
  await raw.patch(deployment('bare', req.body.image));
  res.status(200).json({ status: 'applied' });
});
