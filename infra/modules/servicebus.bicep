// Service Bus namespace and the job queues of SPEC §3/§10. `maxDeliveryCount`
// and `lockDuration` live on the queue, not in function.json (reference §6.21);
// tests/functions/infra.rs checks them against the handler's poison policy
// (`SERVICE_BUS_MAX_RECEIVES`) and against functions/*/function.json.

@description('Namespace name (globally unique).')
param namespaceName string

@description('Region.')
param location string

@description('Namespace tier (Standard is enough; Premium for VNet and large messages).')
@allowed([
  'Standard'
  'Premium'
])
param sku string = 'Standard'

// Each trigger queue has a `-parked` twin: the handler parks poison messages
// there through an output binding (reference §1.8) before the broker's own
// dead-lettering at maxDeliveryCount.
var queues = [
  { name: 'sync-runs', maxDeliveryCount: 10, lockDuration: 'PT5M', defaultMessageTimeToLive: 'P14D' }
  { name: 'webhook-deliveries', maxDeliveryCount: 10, lockDuration: 'PT1M', defaultMessageTimeToLive: 'P14D' }
  { name: 'sync-runs-parked', maxDeliveryCount: 10, lockDuration: 'PT1M', defaultMessageTimeToLive: 'P30D' }
  { name: 'webhook-deliveries-parked', maxDeliveryCount: 10, lockDuration: 'PT1M', defaultMessageTimeToLive: 'P30D' }
]

resource namespace 'Microsoft.ServiceBus/namespaces@2021-11-01' = {
  name: namespaceName
  location: location
  sku: {
    name: sku
    tier: sku
  }
  properties: {
    // Entra ID only: the app's identity gets Data Sender/Receiver roles.
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
  }
}

resource serviceBusQueues 'Microsoft.ServiceBus/namespaces/queues@2021-11-01' = [for q in queues: {
  parent: namespace
  name: q.name
  properties: {
    maxDeliveryCount: q.maxDeliveryCount
    lockDuration: q.lockDuration
    defaultMessageTimeToLive: q.defaultMessageTimeToLive
    deadLetteringOnMessageExpiration: true
    requiresSession: false
    enablePartitioning: false
  }
}]

@description('Namespace name.')
output namespaceName string = namespace.name

@description('Fully qualified namespace (ServiceBusConnection__fullyQualifiedNamespace).')
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
