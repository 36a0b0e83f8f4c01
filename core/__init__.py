"""The ground floor: plumbing every app uses (metrics registry, encryption, request context,
API errors, logging, admin base, feature-flag names). It imports no app of the project."""
