import type { AccessToken, TokenCredential } from '@azure/identity';
import { DefaultAzureCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';

export const COGNITIVE_SERVICES_SCOPE = 'https://cognitiveservices.azure.com/.default';

/** The app's Entra identity (managed identity in Azure), created once on first use. */
export class AppIdentity {
  #credential: TokenCredential | undefined;
  #cognitiveToken: AccessToken | undefined;

  credential(): TokenCredential {
    return (this.#credential ??= new DefaultAzureCredential());
  }

  /** An Entra ID token for a scope (with its expiry), e.g. Redis's: the caller renews it in time. */
  async token(scope: string): Promise<AccessToken> {
    const token = await this.credential().getToken(scope);
    if (!token) throw new Error(`No Entra ID token for ${scope}.`);
    return token;
  }

  /** Reads secrets from Key Vault with the app's identity. */
  secretReader(vaultUri: string): (name: string) => Promise<string> {
    return async (name) => {
      const secret = await new SecretClient(vaultUri, this.credential()).getSecret(name);
      if (!secret.value) throw new Error(`secret '${name}' has no value`);
      return secret.value;
    };
  }

  /** Headers that authenticate an Azure OpenAI / Speech call: the key when one is configured, else an Entra token. */
  async cognitiveAuthHeaders(key: string | undefined): Promise<Record<string, string>> {
    if (key) return { 'api-key': key };
    return { authorization: `Bearer ${await this.cognitiveToken()}` };
  }

  /** An Entra ID token for Azure AI services (Cognitive Services scope), refreshed five minutes before it expires. */
  async cognitiveToken(): Promise<string> {
    const token = this.#cognitiveToken;
    if (token && token.expiresOnTimestamp - Date.now() >= 5 * 60_000) return token.token;
    const fresh = await this.credential().getToken(COGNITIVE_SERVICES_SCOPE);
    if (!fresh) throw new Error('No Entra ID token for Azure AI services (Cognitive Services scope).');
    this.#cognitiveToken = fresh;
    return fresh.token;
  }
}
