"""The emulator's rules, apart from the routes (``emulator/api/``) that parse requests and
render answers. Each module holds one area of stigg-api.md and the storage it owns;
none of them imports a route module, so routes, rules and the webhook outbox form no
import cycle: api -> domain -> (store, clock, periods, webhooks.outbox)."""
