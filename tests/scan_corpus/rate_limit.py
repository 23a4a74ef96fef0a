# scan: 0.5.0 -> 1.5.9
"""A server plugin on the 0.5 rate limiting API."""
from chromadb.rate_limiting import RateLimitingProvider  # expect: rate-limit-enforcer


class PerTenantLimits(RateLimitingProvider):
    def is_allowed(self, key, quota, point=1):
        return True
