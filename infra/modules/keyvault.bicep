// Key Vault (RBAC mode) holding the app's secrets; app settings reference them
// with @Microsoft.KeyVault(...) (reference §4.1, §6.28).

@description('Vault name (globally unique, 3-24 characters).')
param vaultName string

@description('Region.')
param location string

@description('JWT_SECRET value; empty leaves the secret to be set after deployment.')
@secure()
param jwtSecret string = ''

@description('RABBITMQ_URL value (amqps://user:password@host/vhost); empty leaves it to be set later.')
@secure()
param rabbitMqUrl string = ''

@description('SECRETS_KEY value (32 bytes, base64); empty leaves it to be set later.')
@secure()
param secretsKey string = ''

@description('SALESFORCE_CLIENT_SECRET (the connected app\'s consumer secret); empty leaves it to be set later.')
@secure()
param salesforceClientSecret string = ''

@description('HUBSPOT_CLIENT_SECRET; empty leaves it to be set later.')
@secure()
param hubspotClientSecret string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: vaultName
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 30
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

resource jwtSecretValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(jwtSecret)) {
  parent: vault
  name: 'jwt-secret'
  properties: {
    value: jwtSecret
  }
}

resource rabbitMqUrlValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(rabbitMqUrl)) {
  parent: vault
  name: 'rabbitmq-url'
  properties: {
    value: rabbitMqUrl
  }
}

resource secretsKeyValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(secretsKey)) {
  parent: vault
  name: 'secrets-key'
  properties: {
    value: secretsKey
  }
}

resource salesforceClientSecretValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(salesforceClientSecret)) {
  parent: vault
  name: 'salesforce-client-secret'
  properties: {
    value: salesforceClientSecret
  }
}

resource hubspotClientSecretValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(hubspotClientSecret)) {
  parent: vault
  name: 'hubspot-client-secret'
  properties: {
    value: hubspotClientSecret
  }
}

@description('Vault name.')
output vaultName string = vault.name

@description('Vault URI (KEYVAULT_URL).')
output vaultUri string = vault.properties.vaultUri
