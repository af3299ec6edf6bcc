use switchyard_core::ports::{EventQuery, StateStore};
use switchyard_store::SqliteStore;

use super::*;

fn by_admin() -> Author {
    Author::system("admin")
}
use crate::testing::TestClock;

async fn tokens() -> (SqliteStore, Tokens) {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let tokens = Tokens::load(Arc::new(store.clone()), Arc::new(TestClock::at(1)))
        .await
        .unwrap();
    (store, tokens)
}

fn new(name: &str, role: Role) -> NewToken {
    NewToken {
        name: name.into(),
        role,
        apps: None,
        environments: None,
    }
}

#[tokio::test]
async fn a_token_authenticates_until_it_is_revoked_and_only_its_hash_is_stored() {
    let (store, tokens) = tokens().await;
    let admin = tokens.bootstrap().await.unwrap().unwrap();
    assert!(tokens.bootstrap().await.unwrap().is_none(), "only once");
    assert_eq!(tokens.authenticate(&admin.token).unwrap().role, Role::Admin);

    let mut alice = new("alice", Role::Deployer);
    alice.apps = Some(["shop".to_owned()].into());
    let created = tokens.create(&alice, &by_admin()).await.unwrap();
    assert!(created.token.starts_with("sy_"));
    let p = tokens.authenticate(&created.token).unwrap();
    assert_eq!((p.name.as_str(), p.role), ("alice", Role::Deployer));
    assert_eq!(p.token.as_deref(), Some(created.record.id.as_str()));

    let stored = tokens.list().await.unwrap();
    let secret = created.token.rsplit('_').next().unwrap();
    assert!(
        stored
            .iter()
            .all(|t| t.secret_hash != secret && t.secret_hash.len() == 64)
    );

    // A token with one digit changed, another daemon's, or garbage: all the same error.
    let mut forged = created.token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    for bad in [forged.as_str(), "sy_nope_x", "", "Bearer x", "sy_"] {
        assert_eq!(tokens.authenticate(bad), Err(AuthError::Invalid), "{bad}");
    }

    assert!(
        tokens
            .revoke(&created.record.id, &by_admin())
            .await
            .unwrap()
    );
    assert!(
        !tokens
            .revoke(&created.record.id, &by_admin())
            .await
            .unwrap()
    );
    assert_eq!(tokens.authenticate(&created.token), Err(AuthError::Invalid));
    assert!(matches!(
        tokens.revoke("nothere", &by_admin()).await,
        Err(TokenError::Unknown(_))
    ));

    let events = store.events(&EventQuery::default()).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.event.kind.as_str()).collect();
    assert_eq!(kinds, ["token_created", "token_created", "token_revoked"]);
    assert_eq!(events[1].event.actor, "admin");
}

#[tokio::test]
async fn bad_names_and_scopes_are_refused() {
    let (_, tokens) = tokens().await;
    assert!(matches!(
        tokens.create(&new("a b", Role::Viewer), &by_admin()).await,
        Err(TokenError::InvalidName { .. })
    ));
    let mut sdk = new("web", Role::Sdk);
    assert!(matches!(
        tokens.create(&sdk, &by_admin()).await,
        Err(TokenError::SdkEnvironment)
    ));
    sdk.environments = Some(["prod/../x".to_owned()].into());
    assert!(matches!(
        tokens.create(&sdk, &by_admin()).await,
        Err(TokenError::InvalidEnvironment(_))
    ));
    sdk.environments = Some(["production".to_owned()].into());
    let key = tokens.create(&sdk, &by_admin()).await.unwrap();
    let p = tokens.authenticate(&key.token).unwrap();
    assert_eq!(p.only_environment(), Some("production"));
}
