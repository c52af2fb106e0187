// castiel-integrations on Azure Functions (SPEC §10): a Rust custom handler on a
// Linux Elastic Premium plan (RabbitMQ triggers do not run on Consumption or
// Flex), Cosmos DB, Service Bus, Key Vault, Storage and Application Insights.
// Deploy: docs/deploy-azure.md.

targetScope = 'resourceGroup'

@description('Name prefix for every resource (lower case letters, digits, hyphens).')
@minLength(3)
@maxLength(12)
param prefix string = 'castiel'

@description('Region of every resource.')
param location string = resourceGroup().location

@description('Cosmos DB capacity: Serverless or Provisioned (autoscale).')
@allowed([
  'Serverless'
  'Provisioned'
])
param cosmosCapacityMode string = 'Serverless'

@description('Autoscale maximum RU/s of the database when Provisioned.')
param cosmosAutoscaleMaxThroughput int = 1000

@description('Cosmos database name (COSMOS_DATABASE).')
param cosmosDatabaseName string = 'castiel'

@description('Service Bus tier.')
@allowed([
  'Standard'
  'Premium'
])
param serviceBusSku string = 'Standard'

@description('Elastic Premium plan size.')
@allowed([
  'EP1'
  'EP2'
  'EP3'
])
param planSku string = 'EP1'

@description('Always-ready instances (Elastic Premium keeps them warm: no cold start).')
@minValue(1)
param minimumInstances int = 1

@description('Scale-out limit.')
@minValue(1)
param maximumInstances int = 20

@description('JWT_ISSUER (empty: not checked).')
param jwtIssuer string = ''

@description('JWT_AUDIENCE (empty: not checked).')
param jwtAudience string = ''

@description('Castiel shard-manager base URL (SHARD_MANAGER_URL); empty keeps shards in the store.')
param shardManagerUrl string = ''

@description('JWT_SECRET, stored in Key Vault; empty: set the `jwt-secret` secret yourself.')
@secure()
param jwtSecret string = ''

@description('RABBITMQ_URL, stored in Key Vault; empty: set the `rabbitmq-url` secret yourself.')
@secure()
param rabbitMqUrl string = ''

@description('OAUTH_ALLOWED_RETURN_ORIGINS: comma-separated origins of the apps that start OAuth flows (e.g. https://app.castiel.example).')
param oauthAllowedReturnOrigins string = ''

@description('SALESFORCE_CLIENT_ID (the connected app\'s consumer key); empty: Salesforce OAuth is not offered.')
param salesforceClientId string = ''

@description('SALESFORCE_CLIENT_SECRET, stored in Key Vault; empty: set the `salesforce-client-secret` secret yourself.')
@secure()
param salesforceClientSecret string = ''

@description('HUBSPOT_CLIENT_ID; empty: HubSpot OAuth is not offered.')
param hubspotClientId string = ''

@description('HUBSPOT_CLIENT_SECRET, stored in Key Vault; empty: set the `hubspot-client-secret` secret yourself.')
@secure()
param hubspotClientSecret string = ''

var suffix = uniqueString(resourceGroup().id)
var compact = toLower(replace(prefix, '-', ''))
var functionAppName = '${prefix}-func-${suffix}'
var storageAccountName = take('${compact}st${suffix}', 24)
var vaultName = take('${compact}kv${suffix}', 24)
var contentShareName = toLower(take(functionAppName, 63))

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  params: {
    accountName: '${prefix}-cosmos-${suffix}'
    location: location
    databaseName: cosmosDatabaseName
    capacityMode: cosmosCapacityMode
    autoscaleMaxThroughput: cosmosAutoscaleMaxThroughput
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    namespaceName: '${prefix}-sb-${suffix}'
    location: location
    sku: serviceBusSku
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    vaultName: vaultName
    location: location
    jwtSecret: jwtSecret
    rabbitMqUrl: rabbitMqUrl
    salesforceClientSecret: salesforceClientSecret
    hubspotClientSecret: hubspotClientSecret
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    name: '${prefix}-${suffix}'
    location: location
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    // Elastic Premium keeps the app's content on an Azure Files share, which
    // needs a key; the host's own storage (AzureWebJobsStorage) uses the identity.
    allowSharedKeyAccess: true
    supportsHttpsTrafficOnly: true
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${prefix}-plan-${suffix}'
  location: location
  kind: 'elastic'
  sku: {
    name: planSku
    tier: 'ElasticPremium'
  }
  properties: {
    reserved: true
    maximumElasticWorkerCount: maximumInstances
  }
}

var keyVaultRef = 'VaultName=${keyVault.outputs.vaultName}'

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: 'SystemAssigned'
    siteConfig: {
      linuxFxVersion: ''
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      minimumElasticInstanceCount: minimumInstances
      functionAppScaleLimit: maximumInstances
      appSettings: [
        { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
        { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'custom' }
        { name: 'WEBSITE_RUN_FROM_PACKAGE', value: '1' }
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING', value: 'DefaultEndpointsProtocol=https;AccountName=${storage.name};EndpointSuffix=${environment().suffixes.storage};AccountKey=${storage.listKeys().keys[0].value}' }
        { name: 'WEBSITE_CONTENTSHARE', value: contentShareName }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: monitoring.outputs.connectionString }
        { name: 'ServiceBusConnection__fullyQualifiedNamespace', value: serviceBus.outputs.fullyQualifiedNamespace }
        { name: 'RabbitMQConnection', value: '@Microsoft.KeyVault(${keyVaultRef};SecretName=rabbitmq-url)' }
        { name: 'STORE', value: 'cosmos' }
        { name: 'COSMOS_ENDPOINT', value: cosmos.outputs.endpoint }
        { name: 'COSMOS_DATABASE', value: cosmos.outputs.databaseName }
        { name: 'QUEUE', value: 'servicebus' }
        { name: 'SERVICEBUS_NAMESPACE', value: serviceBus.outputs.namespaceName }
        { name: 'SECRETS', value: 'keyvault' }
        { name: 'KEYVAULT_URL', value: keyVault.outputs.vaultUri }
        { name: 'SHARDS', value: empty(shardManagerUrl) ? 'embedded' : 'castiel' }
        { name: 'SHARD_MANAGER_URL', value: shardManagerUrl }
        { name: 'JWT_SECRET', value: '@Microsoft.KeyVault(${keyVaultRef};SecretName=jwt-secret)' }
        { name: 'JWT_ISSUER', value: jwtIssuer }
        { name: 'JWT_AUDIENCE', value: jwtAudience }
        { name: 'RABBITMQ_URL', value: '@Microsoft.KeyVault(${keyVaultRef};SecretName=rabbitmq-url)' }
        { name: 'OAUTH_REDIRECT_BASE_URL', value: 'https://${functionAppName}.azurewebsites.net' }
        { name: 'OAUTH_ALLOWED_RETURN_ORIGINS', value: oauthAllowedReturnOrigins }
        { name: 'SALESFORCE_CLIENT_ID', value: salesforceClientId }
        { name: 'SALESFORCE_CLIENT_SECRET', value: '@Microsoft.KeyVault(${keyVaultRef};SecretName=salesforce-client-secret)' }
        { name: 'HUBSPOT_CLIENT_ID', value: hubspotClientId }
        { name: 'HUBSPOT_CLIENT_SECRET', value: '@Microsoft.KeyVault(${keyVaultRef};SecretName=hubspot-client-secret)' }
        { name: 'DATA_DIR', value: '/tmp/castiel' }
        { name: 'LOG_FORMAT', value: 'json' }
        { name: 'RUST_LOG', value: 'info' }
      ]
    }
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: functionApp.identity.principalId
    cosmosAccountName: cosmos.outputs.accountName
    serviceBusNamespaceName: serviceBus.outputs.namespaceName
    vaultName: keyVault.outputs.vaultName
    storageAccountName: storage.name
  }
}

@description('Function App name (for `func azure functionapp publish` / zip deploy).')
output functionAppName string = functionApp.name

@description('Base URL of the HTTP API.')
output apiBaseUrl string = 'https://${functionApp.properties.defaultHostName}/api'

@description('Cosmos DB document endpoint.')
output cosmosEndpoint string = cosmos.outputs.endpoint

@description('Service Bus fully qualified namespace.')
output serviceBusNamespace string = serviceBus.outputs.fullyQualifiedNamespace

@description('Key Vault URI.')
output keyVaultUri string = keyVault.outputs.vaultUri

@description('Key Vault name (to set secrets).')
output keyVaultName string = keyVault.outputs.vaultName

@description('Storage account of the host.')
output storageAccountName string = storage.name

@description('Object id of the Function App identity.')
output principalId string = functionApp.identity.principalId
