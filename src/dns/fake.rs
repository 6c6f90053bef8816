//! A resolver built from maps, for table-driven tests (mox's MockResolver):
//! records by name, names marked secure, and failures by name and type. A
//! name with no records of any type does not exist (NXDOMAIN).

use std::collections::{HashMap, HashSet};

use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, TLSA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::{Lookup, LookupError, Resolve, Response, Security, display_name};

#[derive(Clone, Debug, Default)]
pub struct FakeResolver {
    records: HashMap<String, Vec<Record>>,
    secure: HashSet<String>,
    /// Answers of one type that are insecure although the name is secure.
    insecure_types: HashSet<(String, RecordType)>,
    failures: HashMap<(String, RecordType), LookupError>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn name(text: &str) -> Name {
    let mut name = Name::from_ascii(text).expect("a test name");
    name.set_fqdn(true);
    name
}

impl FakeResolver {
    pub fn new() -> FakeResolver {
        FakeResolver::default()
    }

    fn add(mut self, owner: &str, data: RData) -> FakeResolver {
        let record = Record::from_rdata(name(owner), 300, data);
        self.records.entry(key(owner)).or_default().push(record);
        self
    }

    pub fn mx(self, owner: &str, preference: u16, exchange: &str) -> FakeResolver {
        self.add(owner, RData::MX(MX::new(preference, name(exchange))))
    }

    pub fn a(self, owner: &str, address: &str) -> FakeResolver {
        let ip = address.parse().expect("an IPv4 address");
        self.add(owner, RData::A(A(ip)))
    }

    pub fn aaaa(self, owner: &str, address: &str) -> FakeResolver {
        let ip = address.parse().expect("an IPv6 address");
        self.add(owner, RData::AAAA(AAAA(ip)))
    }

    pub fn cname(self, owner: &str, target: &str) -> FakeResolver {
        self.add(owner, RData::CNAME(CNAME(name(target))))
    }

    pub fn txt(self, owner: &str, text: &str) -> FakeResolver {
        self.add(owner, RData::TXT(TXT::new(vec![text.to_string()])))
    }

    pub fn tlsa(
        self,
        owner: &str,
        usage: u8,
        selector: u8,
        matching: u8,
        data: &[u8],
    ) -> FakeResolver {
        let tlsa = TLSA::new(
            usage.into(),
            selector.into(),
            matching.into(),
            data.to_vec(),
        );
        self.add(owner, RData::TLSA(tlsa))
    }

    /// Answers for `owner` are DNSSEC secure.
    pub fn secure(mut self, owner: &str) -> FakeResolver {
        self.secure.insert(key(owner));
        self
    }

    /// Answers for `owner` and `rtype` are not secure, whatever the name's.
    pub fn insecure_type(mut self, owner: &str, rtype: RecordType) -> FakeResolver {
        self.insecure_types.insert((key(owner), rtype));
        self
    }

    /// Queries for `owner` and `rtype` fail with `error`.
    pub fn fail(mut self, owner: &str, rtype: RecordType, error: LookupError) -> FakeResolver {
        self.failures.insert((key(owner), rtype), error);
        self
    }

    /// Queries of every type for `owner` get SERVFAIL (a bogus name).
    pub fn bogus(mut self, owner: &str) -> FakeResolver {
        for rtype in [
            RecordType::MX,
            RecordType::A,
            RecordType::AAAA,
            RecordType::TLSA,
            RecordType::TXT,
        ] {
            let error = LookupError::ServFail { name: key(owner) };
            self.failures.insert((key(owner), rtype), error);
        }
        self
    }

    fn answer(&self, queried: &Name, rtype: RecordType) -> Result<Response, LookupError> {
        let owner = key(&display_name(queried));
        if let Some(error) = self.failures.get(&(owner.clone(), rtype)) {
            return Err(error.clone());
        }
        let security = if self.secure.contains(&owner)
            && !self.insecure_types.contains(&(owner.clone(), rtype))
        {
            Security::Secure
        } else {
            Security::Insecure
        };
        let Some(records) = self.records.get(&owner) else {
            return Err(LookupError::NxDomain {
                name: owner,
                security,
            });
        };
        // As a recursive resolver does: the records of the type, or a CNAME
        // (the caller follows it with a new query).
        let records = records
            .iter()
            .filter(|r| r.record_type() == rtype || r.record_type() == RecordType::CNAME)
            .cloned()
            .collect();
        Ok(Response { records, security })
    }
}

impl Resolve for FakeResolver {
    fn query(&self, name: &Name, rtype: RecordType) -> Lookup<'_> {
        let answer = self.answer(name, rtype);
        Box::pin(async move { answer })
    }

    fn describe(&self) -> String {
        "a fake resolver".to_string()
    }
}
