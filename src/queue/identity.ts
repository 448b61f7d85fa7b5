// Who the function is, as the queue needs it: ID tokens of its own service account (the
// metadata server on Cloud Run, through Application Default Credentials) to sign what it
// queues, and that account's email to check what it receives. No stored key.
import { GoogleAuth } from 'google-auth-library';
import type { IdTokenSource } from './queue.ts';

export interface QueueIdentity {
  idToken: IdTokenSource;
  /** The service account the function runs as. */
  email(): Promise<string>;
}

export function adcIdentity(auth = new GoogleAuth()): QueueIdentity {
  let email: Promise<string> | undefined;
  return {
    async idToken(audience) {
      const client = await auth.getIdTokenClient(audience);
      return client.idTokenProvider.fetchIdToken(audience);
    },
    email() {
      email ??= auth.getCredentials().then((c) => {
        if (!c.client_email) throw new Error('Application Default Credentials name no service account (a queue needs the function to run as one)');
        return c.client_email;
      });
      email.catch(() => (email = undefined));
      return email;
    },
  };
}
